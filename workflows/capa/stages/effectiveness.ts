import { contentHashOf } from '../../../common/capa-hash';
import type { CapaState, EffectivenessArgs, EffectivenessRecord } from '../../../common/capa';
import { iso } from '../../lib/time';
import type { CapaCase } from '../capa-case';
import { QA } from '../tasks';

/** The effectiveness wait is over: QA is asked to verify against the criteria. */
export async function effectivenessDue(c: CapaCase): Promise<void> {
  const s = c.state;
  await c.change(
    () => {
      s.stage = 'effectiveness_review';
    },
    () => ({
      audit: { action: 'capa.effectiveness_due', details: { criteria: (s.plan?.criteria ?? []).map((x) => x.id) } },
      notify: [{ to: [QA], kind: 'capa.effectiveness_due' }],
    }),
  );
}

/**
 * A verifier records the results against each criterion. All met: the closure record (plan, evidence, results) is
 * hashed for QA to sign. Any not met: the round ends and the CAPA goes back to investigation.
 */
export function recordEffectiveness(c: CapaCase, args: EffectivenessArgs): Promise<CapaState> {
  const s = c.state;
  const { actor, results, comment } = args;
  const passed = results.every((r) => r.met);
  const record: EffectivenessRecord = { round: s.round, verifier: actor.username, passed, results, comment, at: iso(Date.now()) };
  return c.change(
    () => {
      s.effectiveness.push(record);
      if (passed) {
        s.closureContentHash = contentHashOf({
          number: s.number,
          round: s.round,
          plan: s.plan?.contentHash,
          actions: (s.plan?.actions ?? []).map((x) => ({ id: x.id, completedBy: x.completedBy?.username, evidence: x.evidence })),
          effectiveness: record,
        });
      } else {
        c.startNewRound('effectiveness_failed');
        s.stage = 'investigation';
        s.effectivenessDueAt = null;
        c.setDeadline('investigation');
      }
    },
    (round) => ({
      audit: {
        action: passed ? 'capa.effectiveness_passed' : 'capa.effectiveness_failed',
        actor,
        details: { verifiedRound: round, results: results.map((r) => ({ criterionId: r.criterionId, met: r.met })) },
      },
      record: { kind: 'effectiveness', round, body: record, by: actor.username },
      notify: passed
        ? [{ to: [QA], kind: 'capa.ready_to_close' }]
        : s.owner
          ? [{ to: [s.owner], kind: 'capa.effectiveness_failed', comment }]
          : [],
    }),
    actor.userId,
  );
}
