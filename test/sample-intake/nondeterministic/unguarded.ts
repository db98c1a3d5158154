import { sleep } from '@temporalio/workflow';
import { sampleIntakeWorkflow as current } from '../../../workflows/sample-intake';

/** The intake workflow with a timer added before anything else, unguarded: old histories must fail to replay. */
export async function sampleIntakeWorkflow(...args: Parameters<typeof current>) {
  await sleep('1s');
  return current(...args);
}
