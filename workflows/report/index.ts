import { allHandlersFinished, condition, setHandler, workflowInfo } from '@temporalio/workflow';
import { releaseReportUpdate, reportStateQuery, type ReportInput, type ReportState } from '../../common/reports';
import { ReportCase } from './report-case';
import { validateRelease } from './validators';

/**
 * One version of a sample's report, `report:<accession>:v<n>`: assembled when every reportable test is verified
 * (started by the analysis run whose verification completed the set) or when the lab director asks for a
 * correction; released by the lab director's signed Update, which the validator judges before it enters history.
 */
export async function reportWorkflow(input: ReportInput): Promise<ReportState> {
  const report = new ReportCase(input, workflowInfo().workflowId);
  let releasing = false;

  setHandler(reportStateQuery, () => report.state);
  setHandler(
    releaseReportUpdate,
    async (args) => {
      // Once assembled (a release read from the record may arrive a moment before the run has its answer), and one
      // release at a time: a second, concurrent one meets the first's outcome.
      await condition(() => !releasing && report.state.state !== 'assembling');
      validateRelease(report.state, args);
      releasing = true;
      try {
        await report.release(args);
      } finally {
        releasing = false;
      }
      return report.state;
    },
    { validator: (args) => validateRelease(report.state, args, { whileAssembling: 'accept' }) },
  );

  await report.assemble();
  await condition(() => report.state.state === 'released');
  await report.tellAnalyses();
  await report.outbox.quiet();
  await condition(allHandlersFinished);
  return report.state;
}
