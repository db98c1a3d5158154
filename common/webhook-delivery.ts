import { defineSignal } from '@temporalio/workflow';
import type { Config } from './config';

/** How outbound webhooks are delivered; durations are inputs so tests can pass seconds. */
export interface WebhookDeliverySettings {
  /** First wait after a failed attempt (WEBHOOK_RETRY_INITIAL). */
  retryInitial: string;
  /** The longest wait between attempts (WEBHOOK_RETRY_MAX_INTERVAL). */
  retryMaxInterval: string;
  /** How long one event is retried before it goes to the dead-letter list (WEBHOOK_RETRY_FOR). */
  retryFor: string;
  /** One attempt's HTTP timeout (WEBHOOK_REQUEST_TIMEOUT). */
  requestTimeout: string;
  /** A run with nothing to send still looks this often, in case a wake-up was missed (WEBHOOK_POLL_INTERVAL). */
  pollInterval: string;
}

export interface WebhookSettings extends WebhookDeliverySettings {
  /** WEBHOOK_ALLOWED_HOSTS: receivers on loopback or private ranges an admin allows. */
  allowedHosts: string[];
  /** How long the previous secret stays valid after a rotation (WEBHOOK_SECRET_OVERLAP). */
  secretOverlap: string;
  /** Failing without a single success for this long disables a subscription, with an alert (WEBHOOK_DISABLE_AFTER). */
  disableAfter: string;
}

export const DEFAULT_WEBHOOK_SETTINGS: WebhookSettings = {
  retryInitial: '30s',
  retryMaxInterval: '2h',
  retryFor: '3d',
  requestTimeout: '15s',
  pollInterval: '5m',
  allowedHosts: [],
  secretOverlap: '24h',
  disableAfter: '5d',
};

export function webhookSettings(config: Config): WebhookSettings {
  return {
    retryInitial: config.WEBHOOK_RETRY_INITIAL,
    retryMaxInterval: config.WEBHOOK_RETRY_MAX_INTERVAL,
    retryFor: config.WEBHOOK_RETRY_FOR,
    requestTimeout: config.WEBHOOK_REQUEST_TIMEOUT,
    pollInterval: config.WEBHOOK_POLL_INTERVAL,
    allowedHosts: config.WEBHOOK_ALLOWED_HOSTS.split(',')
      .map((h) => h.trim())
      .filter(Boolean),
    secretOverlap: config.WEBHOOK_SECRET_OVERLAP,
    disableAfter: config.WEBHOOK_DISABLE_AFTER,
  };
}

export const deliverySettings = (s: WebhookSettings): WebhookDeliverySettings => ({
  retryInitial: s.retryInitial,
  retryMaxInterval: s.retryMaxInterval,
  retryFor: s.retryFor,
  requestTimeout: s.requestTimeout,
  pollInterval: s.pollInterval,
});

export interface WebhookDeliveryInput {
  subscriptionId: string;
  settings: WebhookDeliverySettings;
}

export const webhookDeliveryWorkflowId = (subscriptionId: string) => `webhook-delivery:${subscriptionId}`;

/** "There may be something to send": carries nothing, the run reads what to send from Postgres. */
export const webhookWakeSignal = defineSignal('webhookWake');

export const WebhookFailure = {
  /** The subscription is disabled or deleted: the run ends; enabling it starts a new one. */
  NotEnabled: 'WebhookSubscriptionNotEnabled',
} as const;

/** What one batch activity did: how many it delivered, and the event it stopped at when one failed. */
export interface WebhookBatchOutcome {
  /** `enabled`, or why the run ends (`disabled`, `deleted`). */
  state: string;
  delivered: number;
  /** There may be more to send at once (a full batch, the time budget spent, or a failure to retry). */
  more: boolean;
  /** The event whose delivery failed: the run retries it with backoff before anything after it. */
  failedSeq?: number;
}

/** The patch that moved delivery from one activity per event to a batch per activity (open runs replay the old path). */
export const WEBHOOK_BATCH_PATCH = 'webhook-batch-delivery';
