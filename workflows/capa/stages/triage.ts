import { getExternalWorkflowHandle } from '@temporalio/workflow';
import { assigneeKey } from '../../../common/assignees';
import { linkSourcesSignal, riskOf, sourceKey, type CapaState, type TriageArgs } from '../../../common/capa';
import { workflowIds } from '../../../common/ids';
import type { CapaCase } from '../capa-case';
import { durationsFor } from '../deadlines';
import { grantProof } from '../proof';
import { QA } from '../tasks';

/** A new CAPA: recorded with its sources, and put before QA for triage. */
export async function initiate(c: CapaCase): Promise<void> {
  const s = c.state;
  const by = c.input.initiatedBy.username;
  await c.change(
    () => {
      s.stage = 'triage';
    },
    (round) => ({
      audit: { action: 'capa.initiated', by, details: { title: s.title, sources: s.sources.map(sourceKey) } },
      sources: { sources: s.sources, by },
      record: { kind: 'initiation', round, body: { title: s.title, description: s.description, sources: s.sources }, by },
      notify: [{ to: [QA], kind: 'capa.triage', initiatedBy: by }],
    }),
  );
}

/** QA accepts (risk, owner, deadlines by risk), marks the CAPA unfounded, or merges it into another. */
export async function triage(c: CapaCase, args: TriageArgs): Promise<CapaState> {
  const s = c.state;
  const { actor, grant: _grant, ...body } = args;
  const by = actor.username;
  const proof = grantProof('capa.triage', args, { roles: ['qa_manager'] });
  if (args.decision === 'accept') {
    const { severity = 0, occurrence = 0, owner } = args;
    // The validator refused an acceptance without an owner.
    if (!owner) return s;
    let containBy = '';
    return c.change(
      () => {
        s.risk = riskOf(severity, occurrence);
        s.owner = owner;
        s.qaManager = { userId: actor.userId, username: actor.username };
        s.durations = durationsFor(s.risk.level, c.input.durations, args.durations);
        s.triageDecision = { decision: 'accept', by, reason: args.reason ?? '', mergedInto: null };
        s.stage = 'containment';
        containBy = c.setDeadline('containment');
      },
      (round) => ({
        audit: {
          action: 'capa.triaged',
          actor,
          details: { decision: 'accept', risk: s.risk, owner: assigneeKey(owner), dueAt: containBy },
        },
        record: { kind: 'triage', round, body, by },
        notify: [{ to: [owner], kind: 'capa.assigned', containBy }],
      }),
      actor.userId,
      proof,
    );
  }
  const mergedInto = args.decision === 'merge' ? (args.mergeInto ?? null) : null;
  const outcome = args.decision === 'merge' ? 'merged' : 'unfounded';
  await c.change(
    () => {
      s.triageDecision = { decision: args.decision, by, reason: args.reason ?? '', mergedInto };
      c.closeNow(outcome);
    },
    (round) => ({
      audit: { action: `capa.${outcome}`, actor, details: { reason: args.reason, mergedInto } },
      record: { kind: 'triage', round, body, by },
      notify: [{ to: [c.initiator], kind: 'capa.closed', outcome, atTriage: true }],
    }),
    actor.userId,
    proof,
  );
  if (mergedInto) {
    try {
      await getExternalWorkflowHandle(workflowIds.capa(mergedInto)).signal(linkSourcesSignal, {
        sources: s.sources,
        by: `capa:${s.number}`,
      });
    } catch {
      // The API checked the target was open; if it ended meanwhile, the merge is recorded here all the same.
    }
  }
  return s;
}
