import { continueAsNew, setHandler, workflowInfo } from '@temporalio/workflow';
import { batchProgressQuery, sampleIntakeStartOptions, type SampleBatchInput } from '../../common/sample-intake';
import { db, startOrJoinChild } from '../lib';
import type { sampleIntakeWorkflow } from './index';

/**
 * Starts one sample-intake run per sample of a batch, a bounded number at a time, reading the batch from Postgres
 * page by page (IDs and criteria only). The runs outlive the batch run; one started before a continue-as-new or by
 * a retried page counts as started.
 */
export async function sampleBatchWorkflow(input: SampleBatchInput): Promise<{ started: number }> {
  let after = input.resume?.after ?? null;
  let started = input.resume?.started ?? 0;
  let done = false;
  setHandler(batchProgressQuery, () => ({ batchId: input.batchId, started, done }));
  for (;;) {
    const page = await db.batchSamplePage({ batchId: input.batchId, after, limit: input.pageSize, timers: input.timers });
    for (let i = 0; i < page.length; i += input.concurrency) {
      await Promise.all(
        page.slice(i, i + input.concurrency).map(async (sample) => {
          await startOrJoinChild<typeof sampleIntakeWorkflow>('sampleIntakeWorkflow', {
            ...sampleIntakeStartOptions(sample.accession),
            args: [sample],
          });
          started += 1;
        }),
      );
    }
    if (page.length < input.pageSize) break;
    after = page[page.length - 1].accession;
    if (workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof sampleBatchWorkflow>({ ...input, resume: { after, started } });
    }
  }
  done = true;
  return { started };
}
