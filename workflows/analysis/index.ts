import type { UpdateDefinition } from '@temporalio/common';
import { allHandlersFinished, condition, setHandler, workflowInfo } from '@temporalio/workflow';
import {
  analysisStateQuery,
  cancelAnalysisUpdate,
  enterResultUpdate,
  rejectResultUpdate,
  releaseResultUpdate,
  retestAnalysisUpdate,
  retractResultUpdate,
  submitResultUpdate,
  verifyResultUpdate,
  type AnalysisInput,
  type AnalysisState,
} from '../../common/results';
import { analysisRecordChangedSignal } from '../../common/reports';
import { AnalysisCase } from './analysis-case';
import * as validators from './validators';

/**
 * One routed test's result, `analysis:<accession>:<test>[:<n>]`: entered (and edited) by the lab, submitted,
 * verified by as many distinct people as the test's policy asks, released by the lab director; or retracted,
 * rejected, cancelled, or frozen by a retest that continues in a new run. People act through Updates refused by
 * the validators before they enter history; the state is read with a Query.
 */
export async function analysisWorkflow(input: AnalysisInput): Promise<AnalysisState> {
  const analysis = new AnalysisCase(input, workflowInfo().workflowId);

  function onUpdate<A>(
    update: UpdateDefinition<AnalysisState, [A]>,
    validate: (s: AnalysisState, args: A) => void,
    act: (args: A) => Promise<void>,
  ) {
    setHandler(
      update,
      async (args: A) => {
        await condition(() => analysis.state.policy !== null);
        await analysis.inTurn(
          () => validate(analysis.state, args),
          () => act(args),
        );
        return analysis.state;
      },
      { validator: (args: A) => validate(analysis.state, args) },
    );
  }

  setHandler(analysisStateQuery, () => analysis.state);
  onUpdate(enterResultUpdate, validators.validateEntry, (a) => analysis.enter(a));
  onUpdate(submitResultUpdate, validators.validateSubmit, (a) => analysis.submit(a));
  onUpdate(verifyResultUpdate, validators.validateVerify, (a) => analysis.verify(a));
  onUpdate(releaseResultUpdate, validators.validateRelease, (a) => analysis.release(a));
  onUpdate(retractResultUpdate, validators.validateRetract, (a) => analysis.end('analysis.retract', 'retracted', a));
  onUpdate(rejectResultUpdate, validators.validateReject, (a) => analysis.end('analysis.reject', 'rejected', a));
  onUpdate(cancelAnalysisUpdate, validators.validateCancel, (a) => analysis.end('analysis.cancel', 'cancelled', a));
  onUpdate(retestAnalysisUpdate, validators.validateRetest, (a) => analysis.retest(a));
  setHandler(analysisRecordChangedSignal, () => {
    void analysis
      .inTurn(
        () => undefined,
        () => analysis.followRecord(),
      )
      .catch(() => undefined);
  });

  await analysis.open();
  await condition(() => analysis.isDone);
  await analysis.settled();
  await condition(allHandlersFinished);
  await analysis.tellSample();
  return analysis.state;
}
