import {
  condition,
  proxyActivities,
  setHandler,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../../activities';
import type { RemoteDelivery } from '../../activities/notice-writer';
import { durationMs } from '../../common/durations';
import { refuse, FailureType } from '../../common/failures';
import {
  acknowledgeNoticeUpdate,
  noticeStateQuery,
  type AcknowledgeNoticeArgs,
  type NoticeRunState,
} from '../../common/notifications';
import { shortTransaction } from '../lib/activity-options';

/**
 * One run per notice: its input is the notice's ID; the activities read the notice, word it and send it. Slack
 * and SMS go out side by side, each retried on its own, so a channel that is down holds up no other. An urgent
 * notice then waits for an acknowledgement (an Update with the API's grant) and, when none comes within the
 * acknowledgement time, tells the next step of the escalation chain, until someone acknowledges or the chain ends.
 */
export async function noticeWorkflow(noticeId: string): Promise<NoticeRunState> {
  const db = proxyActivities<Activities>(shortTransaction);
  const state: NoticeRunState = { noticeId, priority: null, step: 0, acknowledged: false, done: false };
  let acknowledging = false;
  setHandler(noticeStateQuery, () => state);
  setHandler(
    acknowledgeNoticeUpdate,
    async ({ actor, grant }) => {
      acknowledging = true;
      try {
        await db.recordNoticeAcknowledgement({ noticeId, actor, grant });
        state.acknowledged = true;
      } finally {
        acknowledging = false;
      }
      return state;
    },
    {
      validator: (_args: AcknowledgeNoticeArgs) => {
        if (state.done || state.acknowledged || acknowledging) refuse(FailureType.RunFinished, 'the notice is no longer waiting for an acknowledgement');
        if (state.priority !== 'urgent') refuse(FailureType.WrongStage, 'only urgent notices are acknowledged');
      },
    },
  );

  const plan = await db.startNotice({ noticeId });
  state.priority = plan.priority;
  state.step = plan.step;
  const sending: ActivityOptions = {
    startToCloseTimeout: durationMs(plan.settings.requestTimeout) + 15_000,
    scheduleToCloseTimeout: durationMs(plan.settings.retryFor),
    retry: {
      initialInterval: durationMs(plan.settings.retryInitial),
      maximumInterval: durationMs(plan.settings.retryMaxInterval),
      backoffCoefficient: 2,
      nonRetryableErrorTypes: [FailureType.NotFound],
    },
  };
  const channel = proxyActivities<Activities>(sending);
  const inFlight: Promise<void>[] = [];
  const sendAll = (remote: RemoteDelivery[]) => {
    for (const d of remote) {
      inFlight.push(
        channel.deliverNotice({ noticeId, ...d }).then(
          () => undefined,
          // Retried for NOTIFY_RETRY_FOR without success: recorded as failed; the other deliveries carry on.
          () => db.giveUpNoticeDelivery({ noticeId, ...d }),
        ),
      );
    }
  };

  if (plan.state === 'open') {
    sendAll(plan.remote);
    if (plan.priority === 'urgent') {
      for (;;) {
        if (await condition(() => state.acknowledged, durationMs(plan.settings.ackTimeout))) break;
        if (acknowledging) await condition(() => !acknowledging);
        if (state.acknowledged) break;
        const next = await db.escalateNotice({ noticeId, fromStep: state.step });
        if (next.exhausted) break;
        state.step = next.step;
        sendAll(next.remote);
      }
    }
    await Promise.all(inFlight);
    if (!state.acknowledged) await db.closeNotice({ noticeId, state: plan.priority === 'urgent' ? 'unanswered' : 'delivered' });
  }
  await condition(() => !acknowledging);
  state.done = true;
  return state;
}
