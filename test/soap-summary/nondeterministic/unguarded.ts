import { sleep } from '@temporalio/workflow';
import type { SummaryInput } from '../../../common/soap-summary';
import { soapSummaryWorkflow as current } from '../../../workflows/soap-summary';

/** The summary workflow with a timer added before anything else, unguarded: old histories must fail to replay. */
export async function soapSummaryWorkflow(input: SummaryInput) {
  await sleep('1s');
  return current(input);
}
