import {
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import {
  cancelCapaUpdate,
  capaStateQuery,
  closeCapaUpdate,
  completeActionUpdate,
  containmentUpdate,
  decideExtensionUpdate,
  decidePlanUpdate,
  effectivenessUpdate,
  investigationUpdate,
  linkSourcesSignal,
  linkSourcesUpdate,
  reopenCapaUpdate,
  requestExtensionUpdate,
  submitPlanUpdate,
  triageUpdate,
  userDeactivatedSignal,
  type CapaInput,
  type CapaState,
} from '../../common/capa';
import { CapaCase } from './capa-case';
import { owedNow, sleepFor } from './deadlines';
import { completeAction, decideExtension, requestExtension } from './stages/actions';
import { cancel, cancelByOperator, close, reopen } from './stages/closure';
import { effectivenessDue, recordEffectiveness } from './stages/effectiveness';
import { contain, recordInvestigation } from './stages/investigation';
import { decidePlan, submitPlan } from './stages/plan';
import { holdsSomething, reassignFrom } from './stages/reassignment';
import { linkSources } from './stages/sources';
import { initiate, triage } from './stages/triage';
import { remind } from './stages/wake-ups';
import * as validate from './validators';

/**
 * One corrective and preventive action, from initiation to closure (and reopening), in one durable run.
 *
 * Actions are state inside this run, not child workflows. What an action may do depends on the CAPA around it:
 * closure is refused while any is open, effectiveness is verified by someone who implemented none of them, the
 * stage moves on when the last one is done, and a failed check replaces the whole plan. Kept in one run, each of
 * those rules is a synchronous check in an update validator instead of a cross-run conversation, every open
 * action's deadline is one timer of the CAPA's single wait, and 1,000 open CAPAs are 1,000 runs, not 1,000 × n.
 * An action is small (a description, an owner, a due date, evidence references), so the state stays small.
 */
export async function capaWorkflow(input: CapaInput): Promise<CapaState> {
  const capa = new CapaCase(input, workflowInfo().workflowId);
  const s = capa.state;

  setHandler(capaStateQuery, () => s);
  setHandler(triageUpdate, (decision) => triage(capa, decision), { validator: (decision) => validate.validateTriage(s, decision) });
  setHandler(containmentUpdate, (containment) => contain(capa, containment), {
    validator: (containment) => validate.validateContainment(s, containment),
  });
  setHandler(investigationUpdate, (rootCause) => recordInvestigation(capa, rootCause), {
    validator: (rootCause) => validate.validateInvestigation(s, rootCause),
  });
  setHandler(submitPlanUpdate, (plan) => submitPlan(capa, plan), { validator: (plan) => validate.validatePlan(s, plan, Date.now()) });
  setHandler(decidePlanUpdate, (decision) => decidePlan(capa, decision), {
    validator: (decision) => validate.validatePlanDecision(s, decision),
  });
  setHandler(completeActionUpdate, (completion) => completeAction(capa, completion), {
    validator: (completion) => validate.validateCompleteAction(s, completion),
  });
  setHandler(requestExtensionUpdate, (request) => requestExtension(capa, request), {
    validator: (request) => validate.validateExtensionRequest(s, request),
  });
  setHandler(decideExtensionUpdate, (decision) => decideExtension(capa, decision), {
    validator: (decision) => validate.validateExtensionDecision(s, decision),
  });
  setHandler(effectivenessUpdate, (check) => recordEffectiveness(capa, check), {
    validator: (check) => validate.validateEffectiveness(s, check),
  });
  setHandler(closeCapaUpdate, (closure) => close(capa, closure), { validator: (closure) => validate.validateClose(s, closure) });
  setHandler(cancelCapaUpdate, (cancellation) => cancel(capa, cancellation), {
    validator: (cancellation) => validate.validateCancel(s, cancellation),
  });
  setHandler(reopenCapaUpdate, (reopening) => reopen(capa, reopening), {
    validator: (reopening) => validate.validateReopen(s, reopening),
  });
  setHandler(linkSourcesUpdate, (link) => linkSources(capa, link), { validator: (link) => validate.validateLinkSources(s, link) });
  setHandler(linkSourcesSignal, async (link) => void (await linkSources(capa, link)));
  setHandler(userDeactivatedSignal, async ({ userId, username }) => {
    if (holdsSomething(s, userId)) await reassignFrom(capa, userId, username);
  });

  /** Until the CAPA ends: reminders and escalations as they fall due, the effectiveness wait, the reopen window. */
  async function run(): Promise<CapaState> {
    capa.publish();
    if (!input.resume) await initiate(capa);
    for (;;) {
      if (s.stage === 'cancelled') break;
      const now = Date.now();
      const owed = owedNow(s, now);
      if (owed) {
        await remind(capa, owed.due, owed.kind);
        continue;
      }
      if (s.stage === 'effectiveness_wait' && s.effectivenessDueAt && now >= Date.parse(s.effectivenessDueAt)) {
        await effectivenessDue(capa);
        continue;
      }
      if (s.stage === 'closed' && s.reopenUntil && now >= Date.parse(s.reopenUntil)) break;

      const info = workflowInfo();
      if (info.continueAsNewSuggested || (input.continueAsNewAfter && info.historyLength >= input.continueAsNewAfter)) {
        await capa.outbox.quiet();
        await continueAsNew<typeof capaWorkflow>({
          ...input,
          resume: { snapshot: s, continuedRuns: (input.resume?.continuedRuns ?? 0) + 1 },
        });
      }

      const seen = capa.changes;
      const woken = () => capa.changes !== seen;
      const sleep = sleepFor(s, Date.now());
      if (sleep !== null) await condition(woken, sleep);
      else await condition(woken);
    }
    await capa.outbox.quiet();
    return s;
  }

  try {
    return await run();
  } catch (err) {
    if (!isCancellation(err)) throw err;
    await CancellationScope.nonCancellable(async () => {
      if (!validate.FINISHED.includes(s.stage)) await cancelByOperator(capa);
    });
    throw err;
  }
}
