import {
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  log,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { UpdateDefinition } from '@temporalio/common';
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
import { FailureType } from '../../common/failures';
import { upgradesWithEachBuild } from '../lib/versioning';
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

upgradesWithEachBuild(capaWorkflow);

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
  /**
   * Each Update is judged by its validator as it arrives, then again when its turn to be written comes (runs with
   * grants write one transition at a time, and one refused meanwhile gives back the state it was judged against).
   */
  const human = <A>(
    update: UpdateDefinition<CapaState, [A]>,
    handle: (args: A) => Promise<CapaState>,
    validator: (args: A) => void,
  ): void =>
    setHandler(update, (args: A) => capa.serially(() => handle(args), () => validator(args)), { validator });
  human(triageUpdate, (decision) => triage(capa, decision), (decision) => validate.validateTriage(s, decision));
  human(containmentUpdate, (containment) => contain(capa, containment), (containment) => validate.validateContainment(s, containment));
  human(investigationUpdate, (rootCause) => recordInvestigation(capa, rootCause), (rootCause) => validate.validateInvestigation(s, rootCause));
  human(submitPlanUpdate, (plan) => submitPlan(capa, plan), (plan) => validate.validatePlan(s, plan, Date.now()));
  human(decidePlanUpdate, (decision) => decidePlan(capa, decision), (decision) => validate.validatePlanDecision(s, decision));
  human(completeActionUpdate, (completion) => completeAction(capa, completion), (completion) => validate.validateCompleteAction(s, completion));
  human(requestExtensionUpdate, (request) => requestExtension(capa, request), (request) => validate.validateExtensionRequest(s, request));
  human(decideExtensionUpdate, (decision) => decideExtension(capa, decision), (decision) => validate.validateExtensionDecision(s, decision));
  human(effectivenessUpdate, (check) => recordEffectiveness(capa, check), (check) => validate.validateEffectiveness(s, check));
  human(closeCapaUpdate, (closure) => close(capa, closure), (closure) => validate.validateClose(s, closure));
  human(cancelCapaUpdate, (cancellation) => cancel(capa, cancellation), (cancellation) => validate.validateCancel(s, cancellation));
  human(reopenCapaUpdate, (reopening) => reopen(capa, reopening), (reopening) => validate.validateReopen(s, reopening));
  human(linkSourcesUpdate, (link) => linkSources(capa, link), (link) => validate.validateLinkSources(s, link));
  // Signals from labflow's own processes carry no grant: the step believes them only as far as Postgres bears them
  // out, and one it refuses leaves the run as it was (the refusal is audited and IT operators alerted).
  const machine = async (what: string, work: () => Promise<unknown>): Promise<void> => {
    try {
      await capa.serially(work);
    } catch (err) {
      if (!(err instanceof ApplicationFailure && err.type === FailureType.GrantRefused)) throw err;
      log.warn('signal refused', { signal: what, reason: err.message });
    }
  };
  setHandler(linkSourcesSignal, (link) =>
    machine('linkSources', () => linkSources(capa, { sources: Array.isArray(link?.sources) ? link.sources : [], by: String(link?.by) })),
  );
  setHandler(userDeactivatedSignal, (user) =>
    machine('userDeactivated', async () => {
      const userId = String(user?.userId ?? '');
      if (holdsSomething(s, userId)) await reassignFrom(capa, userId, String(user?.username ?? ''), true);
    }),
  );

  /** Until the CAPA ends: reminders and escalations as they fall due, the effectiveness wait, the reopen window. */
  async function run(): Promise<CapaState> {
    capa.publish();
    if (!input.resume) await capa.serially(() => initiate(capa));
    for (;;) {
      // A transition in flight may yet be refused and given back: the run acts only on state that is written.
      if (capa.grants) await condition(() => capa.idle);
      if (s.stage === 'cancelled') break;
      const now = Date.now();
      const owed = owedNow(s, now);
      // Judged again in its turn: a transition refused meanwhile may have given back the state judged here.
      if (owed) {
        await capa.serially(async () => {
          const still = owedNow(s, Date.now());
          if (still) await remind(capa, still.due, still.kind);
        });
        continue;
      }
      if (s.stage === 'effectiveness_wait' && s.effectivenessDueAt && now >= Date.parse(s.effectivenessDueAt)) {
        await capa.serially(async () => {
          if (s.stage === 'effectiveness_wait') await effectivenessDue(capa);
        });
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
