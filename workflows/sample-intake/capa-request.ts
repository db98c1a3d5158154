import { log } from '@temporalio/workflow';
import type { SampleRef } from '../../activities/sample-intake';
import type { Actor } from '../../common/roles';
import { db } from '../lib';
import { openOrLinkCapa } from '../capa/open-or-link';

/**
 * A rejection met the CAPA rule: link this sample to the open CAPA that already covers it, or start a new CAPA run
 * that outlives this one, then mark the request started. The CAPA number is kept on the request, so a retried plan
 * names the same run. A failure leaves the request pending for a person; it never fails the sample's run.
 */
export async function takeUpCapaRequest(ref: SampleRef, requestId: string, actor: Actor): Promise<void> {
  try {
    const plan = await db.planCapaForRejection({ ref, requestId, actor });
    if (plan.kind === 'done') return;
    await openOrLinkCapa(plan, [{ type: 'sample', id: ref.accession }], 'process:sample-intake');
    await db.markCapaRequestStarted({ ref, requestId, workflowId: plan.workflowId, linked: plan.kind === 'link' });
  } catch (err) {
    log.warn('CAPA request left pending', { requestId, error: String(err) });
  }
}
