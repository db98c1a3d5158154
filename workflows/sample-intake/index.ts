import type { UpdateDefinition } from '@temporalio/common';
import { continueAsNew, setHandler, workflowInfo } from '@temporalio/workflow';
import {
  acceptUpdate,
  acceptWithDeviationUpdate,
  aliquotUpdate,
  attachOrderUpdate,
  cancelUpdate,
  inspectUpdate,
  receiveUpdate,
  reinstateUpdate,
  rejectUpdate,
  routeUpdate,
  sampleEventSignal,
  sampleStateQuery,
  storeUpdate,
  type SampleIntakeInput,
  type SampleIntakeState,
} from '../../common/sample-intake';
import { userDeactivatedSignal } from '../../common/deactivation';
import { sampleTestsChangedSignal } from '../../common/reports';
import { proofOf, SampleCase } from './sample-case';
import * as validators from './validators';

export { sampleBatchWorkflow } from './batch';

/**
 * One specimen from registration to its end (see SampleCase). People act through Updates, refused by the
 * validators before they enter history; couriers and instruments send Signals; the state is read with a Query.
 */
export async function sampleIntakeWorkflow(input: SampleIntakeInput): Promise<SampleIntakeState> {
  const sample = new SampleCase(input, workflowInfo().workflowId);

  /**
   * A person's action: refused by its validator before it enters history, else taken in its turn (judged again
   * against the state it then meets, and given back if its proof is refused), answering the new state.
   */
  function onUpdate<A>(
    update: UpdateDefinition<SampleIntakeState, [A]>,
    transition: (args: A) => Promise<void>,
    validate: (state: SampleIntakeState, args: A) => void,
  ): void {
    setHandler(
      update,
      async (args: A) => {
        await sample.turns.take(
          () => transition(args),
          () => validate(sample.state, args),
        );
        return sample.state;
      },
      { validator: (args: A) => validate(sample.state, args) },
    );
  }

  setHandler(sampleStateQuery, () => sample.state);
  setHandler(sampleEventSignal, (event) => sample.onEvent(event));
  setHandler(sampleTestsChangedSignal, () => sample.onTestsChanged());
  setHandler(userDeactivatedSignal, (user) =>
    sample.handOverFrom({ userId: String(user?.userId ?? ''), username: String(user?.username ?? '') }),
  );
  onUpdate(receiveUpdate, (receipt) => sample.receive(receipt), validators.validateReceipt);
  onUpdate(inspectUpdate, (inspection) => sample.inspect(inspection), validators.validateInspection);
  onUpdate(
    acceptUpdate,
    (acceptance) => sample.accept(acceptance.actor, acceptance.actor.username, proofOf(acceptance)),
    validators.validateAcceptance,
  );
  onUpdate(acceptWithDeviationUpdate, (deviation) => sample.acceptWithDeviation(deviation), validators.validateDeviation);
  onUpdate(rejectUpdate, (rejection) => sample.reject(rejection), validators.validateRejection);
  onUpdate(aliquotUpdate, (aliquots) => sample.aliquot(aliquots), validators.validateAliquots);
  onUpdate(storeUpdate, (storage) => sample.store(storage), validators.validateStorage);
  onUpdate(routeUpdate, (routing) => sample.route(routing), validators.validateRouting);
  onUpdate(
    attachOrderUpdate,
    (order) => sample.attachOrder(order),
    (state, order) => validators.validateOrder(state, order, input.submitter),
  );
  onUpdate(
    cancelUpdate,
    (cancellation) => sample.cancel(cancellation),
    (state, cancellation) => validators.validateCancellation(state, cancellation, input.submitter),
  );
  onUpdate(reinstateUpdate, (reinstatement) => sample.reinstate(reinstatement), validators.validateReinstatement);

  if (!input.resume) await sample.begin();
  if (input.recheckTests) sample.recheckTests();

  for (;;) {
    await sample.completeWhenResulted();
    if (sample.isFinal) return sample.settle();
    if (sample.state.state === 'cancelled') {
      // Nobody reinstated it within the retention period: the run ends, the record stays cancelled.
      if (!(await sample.reinstatedInTime())) return sample.settle();
      continue;
    }
    await sample.waitForChangeOrTimer();
    if (workflowInfo().continueAsNewSuggested) {
      await sample.settle();
      // A change of the tests that woke this wait is looked at by the next run (its input says so).
      await continueAsNew<typeof sampleIntakeWorkflow>({
        ...input,
        arrival: undefined,
        resume: sample.state,
        recheckTests: sample.testsChangePending,
      });
    }
  }
}
