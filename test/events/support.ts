import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import { createEventBell } from '../../activities/event-bell';
import { DEFAULT_WEBHOOK_SETTINGS, webhookDeliveryWorkflowId, type WebhookSettings } from '../../common/webhook-delivery';
import { appendAudit } from '../../db/audit';
import { createLogger } from '../../platform/logger';
import { startWebhookWakeups, type WebhookWakeups } from '../../workers/webhook-wakeups';
import { startPlatform, type Platform, type PlatformOptions } from '../helpers/platform';
import { testEnv } from '../setup/env';

/** A platform whose delivery runs retry in fractions of a second, plus the worker's NOTIFY wake-ups. */
export async function startWebhookPlatform(
  overrides: Partial<WebhookSettings>,
  onResponse?: PlatformOptions['onResponse'],
): Promise<{ p: Platform; wakeups: WebhookWakeups; stop(): Promise<void> }> {
  const env = testEnv();
  const settings: WebhookSettings = {
    ...DEFAULT_WEBHOOK_SETTINGS,
    retryInitial: '200ms',
    retryMaxInterval: '400ms',
    retryFor: '3s',
    requestTimeout: '2s',
    // Long: a delivery in these tests happens because the wake-ups noticed the event's commit, not by polling.
    pollInterval: '1h',
    allowedHosts: ['127.0.0.1'],
    secretOverlap: '1h',
    disableAfter: '1h',
    ...overrides,
  };
  // As the worker wires them: the wake-ups ring the bell the delivery activities wait on for their next event.
  const bell = createEventBell();
  const p = await startPlatform({
    apiConfig: { webhooks: settings, publicUrl: 'http://labflow.test' },
    onResponse,
    activityDeps: {
      webhooks: { allowedHosts: settings.allowedHosts, disableAfter: settings.disableAfter, requestTimeout: settings.requestTimeout, bell },
    },
  });
  const wakeups = await startWebhookWakeups({
    databaseUrl: env.appDatabaseUrl,
    db: env.appDb,
    temporal: env.client,
    taskQueue: p.taskQueue,
    settings,
    log: createLogger({ LOG_LEVEL: 'silent', LOG_PRETTY: false }, 'test'),
    bell,
  });
  return {
    p,
    wakeups,
    async stop() {
      await wakeups.close();
      // Nothing of these tests stays subscribed or running for the test files after them.
      const ids: string[] = await env.db('webhook_subscriptions').whereNot('state', 'deleted').pluck('id');
      await env.db('webhook_subscriptions').whereIn('id', ids).update({ state: 'deleted' });
      for (const id of await env.db('webhook_subscriptions').pluck('id')) {
        await env.client.workflow
          .getHandle(webhookDeliveryWorkflowId(id))
          .terminate('test over')
          .catch((err: unknown) => {
            if (!(err instanceof WorkflowNotFoundError)) throw err;
          });
      }
      await p.stop();
    },
  };
}

/** A verified backup, as the backup activity records it: its audit event and, with it, a backup.verified event. */
export async function verifyBackup(backupId = randomUUID()): Promise<string> {
  await testEnv().appDb.transaction((trx) =>
    appendAudit(trx, {
      actor: 'system:backup',
      action: 'backup.verified',
      entityType: 'backup',
      entityId: backupId,
      details: { bytes: 1234, sha256: 'ab'.repeat(32), encrypted: true, offsite: '/mnt/offsite/labflow.dump' },
    }),
  );
  return backupId;
}
