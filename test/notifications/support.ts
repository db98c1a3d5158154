import { randomBytes } from 'node:crypto';
import { writeNotice } from '../../activities/notice-writer';
import { DEFAULT_NOTICE_SETTINGS, noticeWorkflowId, type NoticeRunState, type NoticeSettings, type Priority } from '../../common/notifications';
import type { Recipient } from '../../db/recipients';
import { startPlatform, type Platform } from '../helpers/platform';
import type { startSlackWebhookServer } from '../helpers/slack-webhook-server';
import type { startTwilioServer } from '../helpers/twilio-server';
import type { TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';

export type SlackServer = Awaited<ReturnType<typeof startSlackWebhookServer>>;
export type TwilioServer = Awaited<ReturnType<typeof startTwilioServer>>;

/** A platform whose notices retry in fractions of a second and send SMS through the local Twilio server. */
export async function startNoticePlatform(
  slack: SlackServer,
  twilio: TwilioServer,
  settings: Partial<NoticeSettings>,
): Promise<Platform> {
  return startPlatform({
    apiConfig: { notifications: { slackUrlPrefixes: [`${slack.url}/services/`] } },
    activityDeps: {
      notices: {
        settings: {
          ...DEFAULT_NOTICE_SETTINGS,
          retryInitial: '200ms',
          retryMaxInterval: '1s',
          retryFor: '2m',
          requestTimeout: '10s',
          chain: [],
          ...settings,
        },
        twilio: { accountSid: twilio.accountSid, authToken: twilio.authToken, fromNumber: '+15005550006', apiUrl: twilio.url },
      },
    },
  });
}

/** A person's Slack webhook path and phone number, unique to the call. */
export function addressesFor(slack: SlackServer): { path: string; url: string; phone: string } {
  const path = `/services/T${randomBytes(4).toString('hex')}/B${randomBytes(4).toString('hex')}/${randomBytes(12).toString('hex')}`;
  const phone = `+4179${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
  return { path, url: `${slack.url}${path}`, phone };
}

export const recipientOf = (u: TestUser): Recipient => ({
  id: u.actor.userId,
  username: u.username,
  email: `${u.username}@lab.test`,
  printed_name: u.actor.printedName,
});

/** Writes a notice about an overdue task as the escalation does, starts its run when it needs one, and sends its emails. */
export async function notify(
  p: Platform,
  priority: Priority,
  recipients: TestUser[],
  title = `Review of SOP-${randomBytes(3).toString('hex')}`,
): Promise<{ noticeId: string; workflowId: string; needsRun: boolean; title: string }> {
  const taskId = randomBytes(8).toString('hex');
  const { noticeId, needsRun, outboxIds } = await testEnv().appDb.transaction((trx) =>
    writeNotice(
      trx,
      {
        idempotencyKey: `test-notice:${taskId}`,
        kind: 'task.escalated',
        priority,
        subjectType: 'document',
        subjectId: `SOP-${taskId}`,
        facts: { taskId, title, entityType: 'document', entityId: `SOP-${taskId}`, dueAt: '2026-12-01T00:00:00.000Z' },
        link: `http://labflow.test/tasks/${taskId}`,
        recipients: recipients.map(recipientOf),
      },
      'lab.test',
    ),
  );
  const workflowId = noticeWorkflowId(noticeId);
  if (needsRun) await testEnv().client.workflow.start('noticeWorkflow', { taskQueue: p.taskQueue, workflowId, args: [noticeId] });
  // As the writing process does: its outbox emails are delivered once the transaction has committed.
  if (outboxIds.length)
    await testEnv().client.workflow.start('deliverEmailsWorkflow', { taskQueue: p.taskQueue, workflowId: `deliver-emails:${noticeId}`, args: [outboxIds] });
  return { noticeId, workflowId, needsRun, title };
}

export const runResult = (workflowId: string) => testEnv().client.workflow.getHandle(workflowId).result() as Promise<NoticeRunState>;

export async function deliveries(noticeId: string) {
  return testEnv().db('notice_deliveries').where({ notice_id: noticeId }).select('user_id', 'channel', 'state', 'attempts', 'error');
}
