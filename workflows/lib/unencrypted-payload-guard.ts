import {
  ActivityFailure,
  ApplicationFailure,
  log,
  type ActivityInput,
  type LocalActivityInput,
  type Next,
  type StartChildWorkflowExecutionInput,
  type WorkflowInboundCallsInterceptor,
  type WorkflowInterceptorsFactory,
  type WorkflowOutboundCallsInterceptor,
} from '@temporalio/workflow';
import { RetryState } from '@temporalio/common';
import { isUnencryptedMarker, UNENCRYPTED_PAYLOAD_FAILURE, unencryptedRefusal } from '../../common/unencrypted-payload';

const refusal = (what: string) => ApplicationFailure.nonRetryable(unencryptedRefusal(what), UNENCRYPTED_PAYLOAD_FAILURE);
const anyMarker = (args: readonly unknown[]) => args.some(isUnencryptedMarker);

/**
 * Refuses what a client without labflow's payload keys sent: a start fails the run before any step, an Update is
 * rejected by its validator (so it never enters history), a query fails, and a Signal is dropped with a warning (the
 * server has already recorded it; failing the task instead would retry it forever). Only Updates without a
 * validator are refused after acceptance, by their handler. Every workflow bundle carries this module
 * (platform/data-converter.ts WORKFLOW_INTERCEPTOR_MODULES), and replays need it too, so that a refused Signal is
 * refused again.
 */
class InboundGuard implements WorkflowInboundCallsInterceptor {
  // A rejected promise, not a throw: the SDK calls these synchronously, and a synchronous throw would fail the
  // workflow task (and so retry forever) instead of failing the run, the Update or the query.
  execute: WorkflowInboundCallsInterceptor['execute'] = (input, next) =>
    anyMarker(input.args) ? Promise.reject(refusal("the run's input")) : next(input);

  handleSignal: WorkflowInboundCallsInterceptor['handleSignal'] = (input, next) => {
    if (!anyMarker(input.args)) return next(input);
    log.warn('signal refused and not applied', { signalName: input.signalName, reason: unencryptedRefusal('its arguments') });
    return Promise.resolve();
  };

  // Runs before the Update is accepted: a refusal here keeps it out of history.
  validateUpdate: WorkflowInboundCallsInterceptor['validateUpdate'] = (input, next) => {
    if (anyMarker(input.args)) throw refusal(`the arguments of update ${input.name}`);
    next(input);
  };

  handleUpdate: WorkflowInboundCallsInterceptor['handleUpdate'] = (input, next) =>
    anyMarker(input.args) ? Promise.reject(refusal(`the arguments of update ${input.name}`)) : next(input);

  handleQuery: WorkflowInboundCallsInterceptor['handleQuery'] = (input, next) =>
    anyMarker(input.args) ? Promise.reject(refusal(`the arguments of query ${input.queryName}`)) : next(input);
}

/** An activity's result completed by someone else through the frontend, in clear, counts as the activity failing. */
class OutboundGuard implements WorkflowOutboundCallsInterceptor {
  async scheduleActivity(input: ActivityInput, next: Next<WorkflowOutboundCallsInterceptor, 'scheduleActivity'>): Promise<unknown> {
    return checked(await next(input), input.activityType, input.options.activityId);
  }

  async scheduleLocalActivity(
    input: LocalActivityInput,
    next: Next<WorkflowOutboundCallsInterceptor, 'scheduleLocalActivity'>,
  ): Promise<unknown> {
    return checked(await next(input), input.activityType, undefined);
  }

  async startChildWorkflowExecution(
    input: StartChildWorkflowExecutionInput,
    next: Next<WorkflowOutboundCallsInterceptor, 'startChildWorkflowExecution'>,
  ): Promise<[Promise<string>, Promise<unknown>]> {
    const [started, completed] = await next(input);
    const checkedResult = completed.then((result) => {
      if (isUnencryptedMarker(result)) throw refusal(`the result of child run ${input.options.workflowId ?? ''}`);
      return result;
    });
    // When the child does not start (already started, for one), its result rejects too and nobody awaits it (an
    // abandoned child's result is never asked for): left unhandled, that rejection would fail the workflow task.
    // Whoever awaits the result still sees the rejection.
    checkedResult.catch(() => undefined);
    return [started, checkedResult];
  }
}

function checked(result: unknown, activityType: string, activityId: string | undefined): unknown {
  if (!isUnencryptedMarker(result)) return result;
  throw new ActivityFailure(
    'Activity task failed',
    activityType,
    activityId,
    RetryState.NON_RETRYABLE_FAILURE,
    'labflow',
    refusal(`the result of activity ${activityType}`),
  );
}

export const interceptors: WorkflowInterceptorsFactory = () => ({
  inbound: [new InboundGuard()],
  outbound: [new OutboundGuard()],
});
