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
import { SampleCase } from './sample-case';
import * as validators from './validators';

export { sampleBatchWorkflow } from './batch';

/**
 * One specimen from registration to its end (see SampleCase). People act through Updates, refused by the
 * validators before they enter history; couriers and instruments send Signals; the state is read with a Query.
 */
export async function sampleIntakeWorkflow(input: SampleIntakeInput): Promise<SampleIntakeState> {
  const sample = new SampleCase(input, workflowInfo().workflowId);
  const current = () => sample.state;
  /** A transition run by an Update, which answers the sample's new state. */
  const answering =
    <A>(transition: (args: A) => Promise<void>) =>
    async (args: A) => {
      await transition(args);
      return current();
    };

  setHandler(sampleStateQuery, current);
  setHandler(sampleEventSignal, (event) => sample.onEvent(event));

  setHandler(
    receiveUpdate,
    answering((receipt) => sample.receive(receipt)),
    {
      validator: (receipt) => validators.validateReceipt(current(), receipt),
    },
  );
  setHandler(
    inspectUpdate,
    answering((inspection) => sample.inspect(inspection)),
    {
      validator: (inspection) => validators.validateInspection(current(), inspection),
    },
  );
  setHandler(
    acceptUpdate,
    answering(({ actor }) => sample.accept(actor, actor.username)),
    {
      validator: ({ actor }) => validators.validateAcceptance(current(), actor),
    },
  );
  setHandler(
    acceptWithDeviationUpdate,
    answering((deviation) => sample.acceptWithDeviation(deviation)),
    {
      validator: (deviation) => validators.validateDeviation(current(), deviation),
    },
  );
  setHandler(
    rejectUpdate,
    answering((rejection) => sample.reject(rejection)),
    {
      validator: (rejection) => validators.validateRejection(current(), rejection),
    },
  );
  setHandler(
    aliquotUpdate,
    answering((aliquots) => sample.aliquot(aliquots)),
    {
      validator: (aliquots) => validators.validateAliquots(current(), aliquots),
    },
  );
  setHandler(
    storeUpdate,
    answering((storage) => sample.store(storage)),
    {
      validator: (storage) => validators.validateStorage(current(), storage),
    },
  );
  setHandler(
    routeUpdate,
    answering((routing) => sample.route(routing)),
    {
      validator: (routing) => validators.validateRouting(current(), routing),
    },
  );
  setHandler(
    attachOrderUpdate,
    answering((order) => sample.attachOrder(order)),
    {
      validator: (order) => validators.validateOrder(current(), order),
    },
  );
  setHandler(
    cancelUpdate,
    answering((cancellation) => sample.cancel(cancellation)),
    {
      validator: (cancellation) => validators.validateCancellation(current(), cancellation),
    },
  );
  setHandler(
    reinstateUpdate,
    answering((reinstatement) => sample.reinstate(reinstatement)),
    {
      validator: (reinstatement) => validators.validateReinstatement(current(), reinstatement),
    },
  );

  if (!input.resume) await sample.begin();

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
      await continueAsNew<typeof sampleIntakeWorkflow>({ ...input, arrival: undefined, resume: sample.state });
    }
  }
}
