import { randomBytes } from 'node:crypto';
import type { ChecklistItem } from '../../common/document-precheck';

/** An SOP as a lab writes one; `marker` makes its text (and so its prompt) this test's own. */
export function sopText(marker = `SOP-${randomBytes(4).toString('hex').toUpperCase()}`): string {
  return [
    `Pipette calibration procedure (${marker})`,
    '1. Purpose: this procedure describes the gravimetric calibration of single-channel pipettes.',
    '2. Responsibilities: the laboratory supervisor assigns calibrations; technicians perform them.',
    '3. Records: calibration results are kept in the equipment log for five years.',
    '4. Method: weigh ten dispenses of water at 20 °C and compute the mean volume.',
  ].join('\n');
}

export const CHECKLIST: ChecklistItem[] = [
  { id: 'purpose-scope', clause: 'ISO/IEC 17025:2017 8.3.2', lookFor: 'A stated purpose and scope', keywords: ['purpose', 'scope'] },
  { id: 'records', clause: 'ISO/IEC 17025:2017 8.4', lookFor: 'Which records are kept and for how long', keywords: ['record'] },
  { id: 'audit-trail', clause: '21 CFR 11.10(e)', lookFor: 'Time-stamped audit trails of record changes', keywords: ['audit trail'] },
];

/** A model's answer: the purpose met with a verbatim quote, the audit trail not met, records unclear. */
export function goodAnswer(extra: object[] = []): string {
  return JSON.stringify({
    findings: [
      {
        itemId: 'purpose-scope',
        status: 'met',
        evidence: 'Purpose: this procedure describes the gravimetric calibration of single-channel pipettes.',
        comment: 'The purpose is stated.',
      },
      { itemId: 'records', status: 'unclear', evidence: 'kept in the equipment log for five years', comment: 'Where, but not who.' },
      { itemId: 'audit-trail', status: 'not_met', evidence: null, comment: 'No audit trail is described.' },
      ...extra,
    ],
  });
}
