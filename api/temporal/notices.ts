import { noticeGrantedArgs, NOTICE_ACKNOWLEDGE, noticeWorkflowId, acknowledgeNoticeUpdate } from '../../common/notifications';
import type { Actor } from '../../common/roles';
import type { ApiDeps } from '../deps';
import { grantAction } from '../signing';

/**
 * Acknowledges an urgent notice for the person the API authenticated: a single-use grant for exactly this notice,
 * then the Update; the run's activity consumes the grant as it records the acknowledgement.
 */
export async function acknowledgeNotice(deps: Pick<ApiDeps, 'db' | 'config' | 'temporal'>, actor: Actor, noticeId: string) {
  const workflowId = noticeWorkflowId(noticeId);
  const grant = await grantAction(deps, actor, { workflowId, action: NOTICE_ACKNOWLEDGE, args: noticeGrantedArgs({ noticeId }) });
  return deps.temporal.workflow.getHandle(workflowId).executeUpdate(acknowledgeNoticeUpdate, { args: [{ actor, grant }] });
}
