import { sleep } from '@temporalio/workflow';
import { erpSyncWorkflow as current } from '../../../workflows/erp-sync';

/** The ERP sync workflow with a timer added before anything else, unguarded: old histories must fail to replay. */
export async function erpSyncWorkflow(...args: Parameters<typeof current>) {
  await sleep('1s');
  return current(...args);
}
