import { allHandlersFinished, condition, patched, setHandler, workflowInfo } from '@temporalio/workflow';
import {
  criticalCallRecordChangedSignal,
  criticalCallStateQuery,
  logAttemptUpdate,
  type CriticalCallInput,
  type CriticalCallState,
} from '../../common/critical-calls';
import { durationMs } from '../../common/durations';
import { CriticalCallCase } from './call-case';
import { validateAttempt } from './validators';

/**
 * A critical value's call, `critical-call:<accession>:<test>[:<n>][:call-<k>]`: the lab calls the ordering provider
 * (or another named person) and logs each attempt with the `log-attempt` Update; a read-back that matches the stored
 * value ends it `notified`. After CRITICAL_CALL_MAX_ATTEMPTS failed attempts, after CRITICAL_CALL_DEADLINE, or at once
 * when the requisition names no ordering provider, the lab director is called in (urgent notice) and may log the
 * attempt that confirms. When the analysis's value stops being critical its run signals this one, which reads the
 * record and ends `withdrawn` (no deadline, no escalation); so does the run of a rejected specimen, for the calls it
 * withdrew on retested analyses. The run carries IDs only.
 */
export async function criticalCallWorkflow(input: CriticalCallInput): Promise<CriticalCallState> {
  const call = new CriticalCallCase(input, workflowInfo().workflowId);

  setHandler(criticalCallStateQuery, () => call.state);
  setHandler(
    logAttemptUpdate,
    async (args) => {
      await condition(() => call.settings !== null);
      await call.inTurn(
        () => validateAttempt(call.state, args),
        () => call.logAttempt(args),
      );
      return call.state;
    },
    { validator: (args) => validateAttempt(call.state, args) },
  );
  setHandler(criticalCallRecordChangedSignal, () => {
    void condition(() => call.settings !== null)
      .then(() =>
        call.inTurn(
          () => undefined,
          () => call.followRecord(),
        ),
      )
      .catch(() => undefined);
  });

  await call.start();
  const settings = call.settings;
  if (settings && call.state.state === 'calling') {
    // The deadline the record holds (PostgreSQL's clock, also for a retried opening), not a fresh one from now.
    const fromRecord = call.deadlineInMs !== undefined && patched('critical-call-deadline-from-record');
    const wait = fromRecord ? Math.max(1, call.deadlineInMs!) : durationMs(settings.deadline);
    const confirmedInTime = await condition(() => call.state.state !== 'calling', wait);
    if (!confirmedInTime) await call.inTurn(() => undefined, () => call.escalate('deadline'));
  }
  // Every withdrawal is told by the run that made it (a rejected specimen's sample run tells the calls of its retested
  // analyses), so an open call waits for its signal or its attempts. Runs recorded before that read their record
  // again past the deadline, every deadline's length.
  if (settings && call.open && !patched('critical-call-told-of-every-withdrawal') && patched('critical-call-rereads-record')) {
    while (call.open && !(await condition(() => !call.open, durationMs(settings.deadline)))) {
      await call.inTurn(() => undefined, () => call.followRecord());
    }
  }
  await condition(() => !call.open);
  await call.settled();
  await call.outbox.quiet();
  await condition(allHandlersFinished);
  return call.state;
}
