import { auditTrail } from '../../db/audit';
import { capaActions, capaSources, findCapa } from '../../db/capa';
import type { Db } from '../../db/knex';
import { custodyTrail, type SampleRow } from '../../db/sample-intake';
import { sampleSignatures, sampleTrail } from '../../db/sample-trail';
import { listSignaturesFor } from '../../db/signatures';
import { fields, isoUtc, signaturesOf, trailEvents, type ExportedRecord } from './exported-record';

/** Who a copy is made for: a person's username and printed name. */
export type Generator = { username: string; printedName: string };

export const generated = (actor: Generator) => ({
  generatedAt: new Date().toISOString(),
  generatedBy: { username: actor.username, printedName: actor.printedName },
});

/**
 * A CAPA as its PostgreSQL projection holds it: for copies made away from the API (a bulk export's run), where no
 * run is asked. The projection is written at every stage change, so it tells the stage, outcome, risk and due date
 * the run last recorded.
 */
export async function capaProjectionRecord(deps: { db: Db }, actor: Generator, number: string): Promise<ExportedRecord> {
  const [row, sources, actions, signatures, trail] = await Promise.all([
    findCapa(deps.db, number),
    capaSources(deps.db, number),
    capaActions(deps.db, number),
    listSignaturesFor(deps.db, 'capa', number),
    auditTrail(deps.db, 'capa', [number]),
  ]);
  if (!row) throw new Error(`CAPA ${number} is not in the projection`);
  return {
    kind: 'capa',
    title: `CAPA ${number}: ${row.title}`,
    entityType: 'capa',
    entityId: number,
    state: row.stage,
    fields: fields([
      ['CAPA', number],
      ['Title', row.title],
      ['Stage', row.stage],
      ['Outcome', row.outcome],
      ['Risk', row.risk_score ? { score: row.risk_score, level: row.risk_level } : null],
      ['Due', isoUtc(row.due_at)],
      ['Assignees', row.assignees ?? []],
      ['Sources', sources],
      ['Actions', actions],
    ]),
    content: null,
    signatures: signaturesOf(signatures),
    custody: null,
    trail: trailEvents(trail),
    ...generated(actor),
  };
}

/**
 * A sample with its patient identification, chain of custody, every signature (its own, its analyses' verifications
 * and result releases, its reports' releases, each naming the record signed) and whole trail (its analyses', reports'
 * and critical-value calls' events with its own, in chain order): PHI.
 */
export async function sampleRecord(deps: { db: Db }, actor: Generator, row: SampleRow): Promise<ExportedRecord> {
  const [custody, signatures, trail] = await Promise.all([
    custodyTrail(deps.db, row.id),
    sampleSignatures(deps.db, row),
    sampleTrail(deps.db, row),
  ]);
  return {
    kind: 'sample',
    title: `Sample ${row.accession}`,
    entityType: 'sample',
    entityId: row.accession,
    state: row.state,
    fields: fields([
      ['Accession', row.accession],
      ['Source', row.source],
      ['External ID', row.external_id],
      ['Barcode', row.barcode],
      ['Sample type', row.sample_type],
      ['Priority', row.priority],
      ['State', row.state],
      ['Stage', row.stage],
      ['Patient name', row.patient_name],
      ['Patient date of birth', row.patient_dob],
      ['Patient MRN', row.patient_mrn],
      ['Requested tests', row.requested_tests],
      ['Rejected tests', row.rejected_tests],
      ['Collected', isoUtc(row.collected_at)],
      ['Received', isoUtc(row.received_at)],
      ['Received by', row.received_by],
      ['Received at location', row.received_location],
      ['Inspection', row.inspection],
      ['Deviation comment', row.deviation_comment],
      [
        'Rejection',
        row.rejection_code ? { code: row.rejection_code, condition: row.rejection_condition, disposition: row.disposition } : null,
      ],
      ['Cancel reason', row.cancel_reason],
      ['Registered', isoUtc(row.registered_at)],
    ]),
    content: null,
    signatures: signaturesOf(signatures),
    custody: custody.map((c) => ({
      at: isoUtc(c.occurred_at)!,
      piece: c.accession,
      event: c.event,
      actor: c.actor,
      from: c.from ?? null,
      to: c.to ?? null,
      condition: c.condition ?? null,
    })),
    trail: trailEvents(trail),
    ...generated(actor),
  };
}

