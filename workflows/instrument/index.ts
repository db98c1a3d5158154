import type { UpdateDefinition } from '@temporalio/common';
import { allHandlersFinished, condition, continueAsNew, setHandler, workflowInfo } from '@temporalio/workflow';
import {
  finishMaintenanceUpdate,
  instrumentStateQuery,
  planMaintenanceUpdate,
  recordCalibrationUpdate,
  recordQcUpdate,
  reportDefectUpdate,
  retireInstrumentUpdate,
  returnToServiceUpdate,
  startMaintenanceUpdate,
  type InstrumentInput,
  type InstrumentState,
} from '../../common/equipment';
import { upgradesWithEachBuild } from '../lib/versioning';
import { expiryOwed, plansDue, remindersOwed, sleepFor } from './deadlines';
import { InstrumentCase } from './instrument-case';
import * as validators from './validators';

upgradesWithEachBuild(instrumentWorkflow);

/**
 * One instrument for as long as the lab has it, `instrument:<code>`: commissioning, in and out of service, retired.
 * People act through Updates refused by the validators before they enter history; the run itself takes the
 * instrument out of service when its certificate ends, reminds QA before that, and announces maintenance that falls
 * due. It continues as new before its history grows large, carrying its state.
 */
export async function instrumentWorkflow(input: InstrumentInput): Promise<InstrumentState> {
  const instrument = new InstrumentCase(input, workflowInfo().workflowId);
  const s = instrument.state;

  function onUpdate<A>(update: UpdateDefinition<InstrumentState, [A]>, validate: (s: InstrumentState, args: A) => void, act: (args: A) => Promise<void>) {
    setHandler(
      update,
      async (args: A) => {
        await instrument.inTurn(
          () => validate(s, args),
          () => act(args),
        );
        return s;
      },
      { validator: (args: A) => validate(s, args) },
    );
  }

  setHandler(instrumentStateQuery, () => s);
  onUpdate(recordCalibrationUpdate, validators.validateCalibration, (a) => instrument.calibrate(a));
  onUpdate(recordQcUpdate, validators.validateQc, (a) => instrument.qc(a));
  onUpdate(reportDefectUpdate, validators.validateDefect, (a) => instrument.defect(a));
  onUpdate(startMaintenanceUpdate, validators.validateStartMaintenance, (a) => instrument.startMaintenance(a));
  onUpdate(finishMaintenanceUpdate, validators.validateFinishMaintenance, (a) => instrument.finishMaintenance(a));
  onUpdate(planMaintenanceUpdate, validators.validatePlanMaintenance, (a) => instrument.planMaintenance(a));
  onUpdate(returnToServiceUpdate, (st, a) => validators.validateReturnToService(st, a, Date.now()), (a) => instrument.returnToService(a));
  onUpdate(retireInstrumentUpdate, validators.validateRetire, (a) => instrument.retire(a));

  instrument.publish();
  for (;;) {
    await instrument.settled();
    if (s.state === 'retired') break;
    const now = Date.now();
    // Each owed step is taken in turn with people's actions, and judged again when its turn comes.
    if (expiryOwed(s, now)) {
      await instrument.inTurn(() => undefined, async () => (expiryOwed(s, Date.now()) ? instrument.expire() : undefined));
      continue;
    }
    const owed = remindersOwed(s, now);
    if (owed.length) {
      await instrument.inTurn(() => undefined, async () => {
        const still = remindersOwed(s, Date.now());
        if (still.length) await instrument.remind(still);
      });
      continue;
    }
    const due = plansDue(s, now)[0];
    if (due) {
      await instrument.inTurn(() => undefined, () => instrument.announceDue(due.id));
      continue;
    }

    const info = workflowInfo();
    if (info.continueAsNewSuggested || (input.continueAsNewAfter && info.historyLength >= input.continueAsNewAfter)) {
      await condition(() => allHandlersFinished() && instrument.idle);
      await continueAsNew<typeof instrumentWorkflow>({
        ...input,
        resume: { snapshot: { ...s, continuedRuns: s.continuedRuns + 1 }, continuedRuns: s.continuedRuns + 1 },
      });
    }

    const seen = instrument.changes;
    const woken = () => instrument.changes !== seen;
    const sleep = sleepFor(s, Date.now());
    if (sleep !== null) await condition(woken, sleep);
    else await condition(woken);
  }
  await condition(() => allHandlersFinished() && instrument.idle);
  return s;
}
