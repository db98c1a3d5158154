import type { CapaState, CompleteActionArgs, ExtensionDecisionArgs, ExtensionRequestArgs } from '../../../common/capa';
import { iso } from '../../lib/time';
import { actionRow, type CapaCase } from '../capa-case';
import { afterDuration, reminderPast } from '../deadlines';
import { escalateTo, openActions } from '../tasks';
import { grantProof } from '../proof';
import { openAction } from '../validators';

/** An action's owner completes it with evidence; the last one done starts the effectiveness wait. */
export function completeAction(c: CapaCase, args: CompleteActionArgs): Promise<CapaState> {
  const s = c.state;
  const { actor, actionId, evidence } = args;
  const action = openAction(s, actionId);
  return c.change(
    () => {
      action.state = 'done';
      action.completedBy = { userId: actor.userId, username: actor.username };
      action.completedAt = iso(Date.now());
      action.evidence = evidence;
      action.extensionRequest = null;
      if (!openActions(s).length) {
        s.stage = 'effectiveness_wait';
        s.effectivenessDueAt = afterDuration(Date.now(), s.durations.effectivenessWait);
      }
    },
    (round) => ({
      audit: {
        action: 'capa.action_completed',
        actor,
        details: {
          actionId,
          attachments: evidence.attachments,
          ...(s.stage === 'effectiveness_wait' ? { effectivenessDueAt: s.effectivenessDueAt } : {}),
        },
      },
      actions: [actionRow(action, round)],
      record: { kind: 'action_evidence', round, body: { actionId, ...evidence }, by: actor.username },
    }),
    actor.userId,
    grantProof('capa.complete_action', args, { holds: [action.owner] }),
  );
}

/** An action's owner asks QA for a later due date. */
export function requestExtension(c: CapaCase, args: ExtensionRequestArgs): Promise<CapaState> {
  const s = c.state;
  const { actor, actionId, dueAt, reason } = args;
  const action = openAction(s, actionId);
  return c.change(
    () => {
      action.extensionRequests += 1;
      action.extensionRequest = { dueAt: iso(Date.parse(dueAt)), reason, by: actor.username, at: iso(Date.now()) };
    },
    () => ({
      audit: { action: 'capa.extension_requested', actor, details: { actionId, dueAt, reason } },
      notify: [{ to: [escalateTo(s)], kind: 'capa.extension_requested', actionId, dueAt, reason, requestedBy: actor.printedName }],
    }),
    undefined,
    grantProof('capa.request_extension', args, { holds: [action.owner] }),
  );
}

/** QA grants (the action and its task get the new due date, reminders start afresh) or refuses the extension. */
export function decideExtension(c: CapaCase, args: ExtensionDecisionArgs): Promise<CapaState> {
  const s = c.state;
  const { actor, actionId, approve, reason } = args;
  const action = openAction(s, actionId);
  return c.change(
    () => {
      if (approve && action.extensionRequest) {
        action.dueAt = action.extensionRequest.dueAt;
        action.extensions += 1;
        action.reminded = reminderPast(action.dueAt, s.durations.reminderBefore, Date.now());
        action.escalated = false;
      }
      action.extensionRequest = null;
    },
    (round) => ({
      audit: {
        action: approve ? 'capa.extension_granted' : 'capa.extension_refused',
        actor,
        details: { actionId, dueAt: action.dueAt, extensions: action.extensions, reason },
      },
      actions: [actionRow(action, round)],
      retimeTasks: [{ prefix: `${c.workflowId}:r${s.round}:action:${actionId}:`, dueAt: action.dueAt }],
      notify: [{ to: [action.owner], kind: 'capa.extension_decided', actionId, granted: approve, dueAt: action.dueAt, reason }],
    }),
    actor.userId,
    grantProof('capa.decide_extension', args, {
      roles: ['qa_manager'],
      never: action.owner.kind === 'user' ? [action.owner.userId] : [],
    }),
  );
}
