import { sleep } from '@temporalio/workflow';
import type { DocumentApprovalInput } from '../../../common/document-approval';
import { documentApprovalWorkflow as current } from '../../../workflows/document-approval';

/** The same workflow with a new timer at the start, added without a patch: old histories must not replay. */
export async function documentApprovalWorkflow(input: DocumentApprovalInput) {
  await sleep('1s');
  return current(input);
}
