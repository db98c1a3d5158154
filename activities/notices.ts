import { ApplicationFailure, log } from '@temporalio/activity';
import type { ChainStep } from '../common/notification-chain';
import { DEFAULT_NOTICE_SETTINGS, NOTICE_ACKNOWLEDGE, noticeGrantedArgs, noticeWorkflowId, type NoticeSettings } from '../common/notifications';
import { appendAudit } from '../db/audit';
import { channelAddresses } from '../db/notification-preferences';
import type { Recipient } from '../db/recipients';
import type { Db } from '../db/knex';
import { durationMs } from '../common/durations';
import { postToSlack } from './channels/slack';
import { sendSms } from './channels/sms';
import type { ChannelOutcome } from './channels/outcome';
import type { ActivityDeps } from './deps';
import { grantChecks } from './lib/grant-checks';
import { deliverOutbox } from './notifications';
import { renderNotice } from './notice-templates';
import { noticeFacts, openStep, type NoticeRow, type RemoteDelivery } from './notice-writer';

/** The failure a run retries: the channel may answer next time (429, 5xx, a network failure). */
export const CHANNEL_UNAVAILABLE_NOW = 'NotificationChannelFailed';

export interface NoticePlan {
  priority: NoticeRow['priority'];
  state: string;
  step: number;
  /** Slack and SMS deliveries of the current step still to make. */
  remote: RemoteDelivery[];
  settings: Pick<NoticeSettings, 'ackTimeout' | 'retryInitial' | 'retryMaxInterval' | 'retryFor' | 'requestTimeout'>;
}

const USER_COLUMNS = ['id', 'username', 'email', 'printed_name'] as const;

async function chainStepPeople(db: Db, step: ChainStep): Promise<Recipient[]> {
  const q = db('users').where('active', true).select(...USER_COLUMNS).orderBy('username');
  return 'role' in step ? q.whereRaw('? = any(roles)', [step.role]) : q.where('username', step.username);
}

/** Sending a notice on Slack and SMS, escalating an urgent one, and recording who acknowledged it. */
export function noticeActivities(deps: ActivityDeps) {
  const { db, mailer, mailDomain, publicUrl } = deps;
  const settings = deps.notices?.settings ?? DEFAULT_NOTICE_SETTINGS;
  const checks = grantChecks(deps);

  async function noticeRow(noticeId: string): Promise<NoticeRow> {
    const row = await db('notices').where({ id: noticeId }).first();
    if (!row) throw ApplicationFailure.nonRetryable(`no notice ${noticeId}`, 'NotFound');
    return row;
  }

  async function remoteOf(noticeId: string, step: number): Promise<RemoteDelivery[]> {
    return db('notice_deliveries as d')
      .join('notice_recipients as r', function () {
        this.on('r.notice_id', 'd.notice_id').andOn('r.user_id', 'd.user_id');
      })
      .where({ 'd.notice_id': noticeId, 'd.state': 'pending', 'r.step': step })
      .whereIn('d.channel', ['slack', 'sms'])
      .orderBy(['d.user_id', 'd.channel'])
      .select('d.user_id as userId', 'd.channel');
  }

  async function send(channel: 'slack' | 'sms', userId: string, text: string): Promise<ChannelOutcome | { kind: 'skipped'; detail: string }> {
    const to = await channelAddresses(db, userId);
    const timeoutMs = durationMs(settings.requestTimeout);
    if (channel === 'slack') {
      if (!to.slackWebhookUrl) return { kind: 'skipped', detail: 'no Slack webhook URL set' };
      return postToSlack(to.slackWebhookUrl, text, timeoutMs);
    }
    if (!to.phoneNumber) return { kind: 'skipped', detail: 'no phone number set' };
    if (!deps.notices?.twilio) return { kind: 'skipped', detail: 'SMS is not configured (TWILIO_*)' };
    return sendSms({ ...deps.notices.twilio, timeoutMs }, to.phoneNumber, text);
  }

  return {
    /** What a notice's run does next: its priority, its step, the deliveries pending, and the settings of its waits. */
    async startNotice(input: { noticeId: string }): Promise<NoticePlan> {
      const row = await noticeRow(input.noticeId);
      const { ackTimeout, retryInitial, retryMaxInterval, retryFor, requestTimeout } = settings;
      return {
        priority: row.priority,
        state: row.state,
        step: row.step,
        remote: await remoteOf(row.id, row.step),
        settings: { ackTimeout, retryInitial, retryMaxInterval, retryFor, requestTimeout },
      };
    },

    /**
     * Sends one pending delivery. Sent and refused-for-good are recorded and answered; a failure that may pass
     * (429 with its Retry-After, 5xx, no answer) is recorded and thrown for Temporal to retry. A delivery already
     * made (a retry after a crash) is not made again.
     */
    async deliverNotice(input: RemoteDelivery & { noticeId: string }): Promise<{ state: string }> {
      const key = { notice_id: input.noticeId, user_id: input.userId, channel: input.channel };
      const delivery = await db('notice_deliveries').where(key).first('state');
      if (!delivery) throw ApplicationFailure.nonRetryable(`no ${input.channel} delivery of notice ${input.noticeId}`, 'NotFound');
      if (delivery.state !== 'pending') return { state: delivery.state };
      const notice = await noticeRow(input.noticeId);
      const text = renderNotice(noticeFacts(notice), notice.template_version).short;
      const outcome = await send(input.channel, input.userId, text);
      const attempts = db.raw('attempts + 1');
      if (outcome.kind === 'sent') {
        await db('notice_deliveries')
          .where(key)
          .update({ state: 'sent', attempts, error: null, provider_id: outcome.providerId ?? null, sent_at: db.fn.now(), updated_at: db.fn.now() });
        return { state: 'sent' };
      }
      if (outcome.kind === 'retry') {
        await db('notice_deliveries').where(key).update({ attempts, error: outcome.detail, updated_at: db.fn.now() });
        throw ApplicationFailure.create({
          type: CHANNEL_UNAVAILABLE_NOW,
          message: `${input.channel}: ${outcome.detail}`,
          ...(outcome.retryAfterMs !== undefined ? { nextRetryDelay: outcome.retryAfterMs } : {}),
        });
      }
      const state = outcome.kind === 'refused' ? 'failed' : 'skipped';
      await db('notice_deliveries').where(key).update({ state, attempts, error: outcome.detail, updated_at: db.fn.now() });
      log.warn('notice delivery not made', { noticeId: input.noticeId, channel: input.channel, state, detail: outcome.detail });
      return { state };
    },

    /** A delivery that kept failing for NOTIFY_RETRY_FOR: recorded as failed, the run carries on. */
    async giveUpNoticeDelivery(input: RemoteDelivery & { noticeId: string }): Promise<void> {
      await db('notice_deliveries')
        .where({ notice_id: input.noticeId, user_id: input.userId, channel: input.channel, state: 'pending' })
        .update({ state: 'failed', updated_at: db.fn.now() });
    },

    /**
     * Tells the next step of the escalation chain: the chain's entries after the notice's own recipients, each
     * resolved to the active people it names now, skipping entries that name nobody new. Their in-app rows and
     * emails are written and the emails sent here; their Slack and SMS are answered for the run to send.
     */
    async escalateNotice(input: { noticeId: string; fromStep: number }): Promise<{ step: number; remote: RemoteDelivery[]; exhausted: boolean }> {
      for (let step = input.fromStep + 1; step <= settings.chain.length; step += 1) {
        const people = await chainStepPeople(db, settings.chain[step - 1]);
        const opened = await db.transaction(async (trx) => {
          const row: NoticeRow = await trx('notices').where({ id: input.noticeId }).forNoKeyUpdate().first();
          if (row.state !== 'open') return null;
          if (row.step >= step) return { told: 1, outboxIds: [] as string[], remote: [] as RemoteDelivery[] };
          const opened = await openStep(trx, row, people, step, mailDomain);
          await trx('notices').where({ id: row.id }).update({ step });
          await appendAudit(trx, {
            actor: 'system:notices',
            action: 'notice.escalated',
            entityType: row.subject_type,
            entityId: row.subject_id,
            details: { noticeId: row.id, kind: row.kind, step, told: opened.told },
            idempotencyKey: `notice-escalated:${row.id}:${step}`,
          });
          return opened;
        });
        if (!opened) return { step: input.fromStep, remote: [], exhausted: true };
        if (opened.outboxIds.length) await deliverOutbox({ db, mailer }, opened.outboxIds);
        if (opened.told > 0) return { step, remote: await remoteOf(input.noticeId, step), exhausted: false };
      }
      return { step: input.fromStep, remote: [], exhausted: true };
    },

    /**
     * Records that a person acknowledged the notice, with the API's grant as proof (DESIGN.md Trust): the grant is
     * consumed in the same transaction, and only someone the notice was sent to may acknowledge it.
     */
    async recordNoticeAcknowledgement(input: { noticeId: string; actor: unknown; grant: string }): Promise<{ acknowledgedBy: string }> {
      const workflowId = noticeWorkflowId(input.noticeId);
      const row = await noticeRow(input.noticeId);
      const ref = {
        workflowId,
        entityType: 'notice',
        entityId: input.noticeId,
        label: `notice ${input.noticeId}`,
        link: `${publicUrl}/notices/${input.noticeId}`,
      };
      return checks.recording(ref, NOTICE_ACKNOWLEDGE, async (trx) => {
        const recipients: string[] = await trx('notice_recipients').where({ notice_id: input.noticeId }).pluck('user_id');
        const actor = await checks.granted(
          trx,
          ref,
          { grantId: input.grant, action: NOTICE_ACKNOWLEDGE, actor: input.actor, args: noticeGrantedArgs({ noticeId: input.noticeId }) },
          (user) => recipients.includes(user.id),
        );
        await trx('notices')
          .where({ id: input.noticeId, state: 'open' })
          .update({ state: 'acknowledged', acknowledged_by: actor.userId, acknowledged_at: trx.fn.now() });
        await appendAudit(trx, {
          actorId: actor.userId,
          actor: actor.username,
          action: 'notice.acknowledged',
          entityType: row.subject_type,
          entityId: row.subject_id,
          details: { noticeId: input.noticeId, kind: row.kind },
          idempotencyKey: `notice-acknowledged:${input.noticeId}`,
        });
        return { acknowledgedBy: actor.userId };
      });
    },

    /** The run's ending, recorded: delivered (normal), or unanswered (urgent, the chain ran out). */
    async closeNotice(input: { noticeId: string; state: 'delivered' | 'unanswered' }): Promise<void> {
      await db('notices').where({ id: input.noticeId, state: 'open' }).update({ state: input.state });
    },
  };
}
