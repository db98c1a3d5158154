import type { Client as TemporalClient } from '@temporalio/client';
import { deliverySettings, webhookDeliveryWorkflowId, webhookWakeSignal, type WebhookSettings } from '../common/webhook-delivery';
import { DOMAIN_EVENTS_CHANNEL } from '../db/domain-events';
import type { Db } from '../db/knex';
import { createPgListener } from '../db/pg-listener';
import type { Logger } from '../platform/logger';
import type { webhookDeliveryWorkflow } from '../workflows';

export interface WebhookWakeups {
  close(): Promise<void>;
}

/**
 * Wakes the delivery runs of the subscriptions an event concerns as soon as it commits (PostgreSQL NOTIFY is sent
 * at commit, from any process that wrote an event), and starts the run of every enabled subscription at start-up.
 * It only shortens the wait: a run that missed a wake-up still looks every WEBHOOK_POLL_INTERVAL.
 */
export async function startWebhookWakeups(deps: {
  databaseUrl: string;
  db: Db;
  temporal: TemporalClient;
  taskQueue: string;
  settings: WebhookSettings;
  log: Logger;
  /** Rung at each commit too, for the delivery activities of this process that wait for their next event. */
  bell?: { ring(): void };
}): Promise<WebhookWakeups> {
  const pendingTypes = new Set<string>();
  let all = true;
  let running: Promise<void> | null = null;
  let closed = false;

  const wake = (subscriptionId: string) =>
    deps.temporal.workflow.signalWithStart<typeof webhookDeliveryWorkflow>('webhookDeliveryWorkflow', {
      workflowId: webhookDeliveryWorkflowId(subscriptionId),
      taskQueue: deps.taskQueue,
      args: [{ subscriptionId, settings: deliverySettings(deps.settings) }],
      signal: webhookWakeSignal,
      signalArgs: [],
    });

  async function drain() {
    while (!closed && (all || pendingTypes.size)) {
      const types = [...pendingTypes];
      const everyOne = all;
      pendingTypes.clear();
      all = false;
      const q = deps.db('webhook_subscriptions').where({ state: 'enabled' });
      if (!everyOne) q.whereRaw('event_types && ?::text[]', [types]);
      for (const id of await q.pluck('id')) {
        await wake(id).catch((err: unknown) =>
          deps.log.warn(
            { subscriptionId: id, err: err instanceof Error ? err.name : String(err) },
            'could not wake a webhook delivery run',
          ),
        );
      }
    }
  }
  const kick = () => {
    running ??= drain()
      .catch((err: unknown) => deps.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'webhook wake-ups failed'))
      .finally(() => {
        running = null;
        if (!closed && (all || pendingTypes.size)) kick();
      });
  };

  // The pattern the API processes use (db/pg-listener.ts). After a reconnection every run is woken, since
  // notifications sent meanwhile are lost.
  const listener = createPgListener({
    connectionString: deps.databaseUrl,
    applicationName: 'labflow-webhook-wakeups',
    channels: [DOMAIN_EVENTS_CHANNEL],
    log: { warn: (obj, msg) => deps.log.warn(obj, `webhook wake-ups: ${msg}`), info: (obj, msg) => deps.log.info(obj, `webhook wake-ups: ${msg}`) },
  });
  listener.on(DOMAIN_EVENTS_CHANNEL, (payload) => {
    deps.bell?.ring();
    if (payload) pendingTypes.add(payload);
    kick();
  });
  listener.onReset(() => {
    deps.bell?.ring();
    all = true;
    kick();
  });
  void listener.ready.then(() => {
    all = true;
    kick();
  });
  // Start-up waits for the LISTEN while PostgreSQL answers; without it the worker goes on and the listener retries.
  await Promise.race([listener.ready, new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
  return {
    async close() {
      closed = true;
      await running;
      await listener.close();
    },
  };
}
