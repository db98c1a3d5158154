import { patched, sleep } from '@temporalio/workflow';
import type { DocumentApprovalInput } from '../../../common/document-approval';
import { documentApprovalWorkflow as current } from '../../../workflows/document-approval';

/** The same change guarded by patched(): runs started before it keep their old path and replay cleanly. */
export async function documentApprovalWorkflow(input: DocumentApprovalInput) {
  if (patched('pause-before-review')) await sleep('1s');
  return current(input);
}
