import { sleep } from '@temporalio/workflow';
import { backupWorkflow as current } from '../../../workflows/backup';

/** The backup workflow with a timer added before anything else, unguarded: old histories must fail to replay. */
export async function backupWorkflow(...args: Parameters<typeof current>) {
  await sleep('1s');
  return current(...args);
}
