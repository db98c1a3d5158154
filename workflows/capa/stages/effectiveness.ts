import { contentHashOf } from '../../../common/capa-hash';
import { sourceKey, type CapaState, type EffectivenessArgs, type EffectivenessRecord } from '../../../common/capa';
import { iso } from '../../lib/time';
import type { CapaCase } from '../capa-case';
import { grantProof } from '../proof';
import { QA } from '../tasks';

/**
 * What QA signs at closure: the plan's hash, each action's evidence, the passing effectiveness results and (in runs
 * with action grants) the sources the CAPA names, so a source linked after the hash was shown voids the signature.
 */
export function closureHashOf(c: CapaCase, passed: EffectivenessRecord): string {
  const s = c.state;
  return contentHashOf({
    number: s.number,
    round: s.round,
    plan: s.plan?.contentHash,
    actions: (s.plan?.actions ?? []).map((x) => ({ id: x.id, completedBy: x.completedBy?.username, evidence: x.evidence })),
    effectiveness: passed,
    ...(c.grants ? { sources: s.sources.map(sourceKey).sort() } : {}),
  });
}

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
        s.closureContentHash = closureHashOf(c, record);
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
    grantProof('capa.record_effectiveness', args, {
      roles: ['qa_manager', 'lab_director'],
      // Whoever implemented an action of this plan does not verify it.
      never: (s.plan?.actions ?? []).flatMap((x) => [
        ...(x.completedBy ? [x.completedBy.userId] : []),
        ...(x.owner.kind === 'user' ? [x.owner.userId] : []),
      ]),
    }),
  );
}
