import type { Client as TemporalClient } from '@temporalio/client';
import pg from 'pg';
import { deliverySettings, webhookDeliveryWorkflowId, webhookWakeSignal, type WebhookSettings } from '../common/webhook-delivery';
import { DOMAIN_EVENTS_CHANNEL } from '../db/domain-events';
import type { Db } from '../db/knex';
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

  let listener: pg.Client | undefined;
  let retryMs = 500;
  let timer: NodeJS.Timeout | undefined;
  // A dedicated connection: a pooled one would lose its LISTEN when handed back. After a reconnect every run is
  // woken, since notifications sent meanwhile are lost.
  async function listen(): Promise<void> {
    const c = new pg.Client({ connectionString: deps.databaseUrl, application_name: 'labflow-webhook-wakeups' });
    listener = c;
    let lost = false;
    const onLost = (err?: Error) => {
      if (lost) return;
      lost = true;
      void c.end().catch(() => {});
      if (closed) return;
      deps.log.warn({ err: err?.message }, 'webhook wake-ups: connection lost, reconnecting');
      timer = setTimeout(() => void listen(), retryMs);
      retryMs = Math.min(retryMs * 2, 30_000);
    };
    c.on('error', onLost);
    c.on('end', () => onLost());
    c.on('notification', (msg) => {
      if (msg.payload) pendingTypes.add(msg.payload);
      kick();
    });
    try {
      await c.connect();
      await c.query(`listen ${DOMAIN_EVENTS_CHANNEL}`);
    } catch (err) {
      onLost(err as Error);
      return;
    }
    retryMs = 500;
    all = true;
    kick();
  }
  await listen();
  return {
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await running;
      await listener?.end().catch(() => {});
    },
  };
}
