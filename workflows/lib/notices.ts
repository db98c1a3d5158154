import { noticeWorkflowId } from '../../common/notifications';
import type { noticeWorkflow } from '../notice';
import { startOrJoinChild } from './children';

/** Starts the run of each notice an activity wrote (it outlives this run); a notice already running is joined. */
export async function startNoticeRuns(noticeIds: string[] | undefined): Promise<void> {
  for (const noticeId of noticeIds ?? []) {
    await startOrJoinChild<typeof noticeWorkflow>('noticeWorkflow', { workflowId: noticeWorkflowId(noticeId), args: [noticeId] });
  }
}
