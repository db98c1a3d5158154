import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  continueAsNew,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../../activities';
import { durationMs } from '../../common/durations';
import { WEBHOOK_BATCH_PATCH, WebhookFailure, webhookWakeSignal, type WebhookDeliveryInput } from '../../common/webhook-delivery';
import { shortTransaction } from '../lib/activity-options';

const BATCH = 50;

/**
 * One long-lived run per subscription sends its events in commit order: an event is sent only once the one before
 * it was delivered or dead-lettered. Postgres holds the cursor, so a new run (after continue-as-new, a re-enable or a
 * lost run) resumes where the last one stopped. Wake-up signals carry nothing; what to send is read from Postgres, so
 * a signal cannot make the run send anything labflow did not record.
 *
 * Each turn is one batch activity that sends what is pending, in order, until the first failure; the failed event
 * is then retried on its own with Temporal's backoff (and dead-lettered when its retries are spent) before the next
 * batch. Runs started before the batch path (WEBHOOK_BATCH_PATCH) replay their one-activity-per-event turns.
 */
export async function webhookDeliveryWorkflow(input: WebhookDeliveryInput): Promise<string> {
  const { nextWebhookBatch, deadLetterWebhookEvent } = proxyActivities<Activities>(shortTransaction);
  const { deliverWebhookBatch } = proxyActivities<Activities>({
    // The activity takes no new event after 10 s; the last may take the request timeout.
    startToCloseTimeout: durationMs(input.settings.requestTimeout) + 20_000,
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
  });
  const { deliverWebhookEvent } = proxyActivities<Activities>({
    startToCloseTimeout: durationMs(input.settings.requestTimeout) + 5000,
    scheduleToCloseTimeout: durationMs(input.settings.retryFor),
    retry: {
      initialInterval: durationMs(input.settings.retryInitial),
      maximumInterval: durationMs(input.settings.retryMaxInterval),
      backoffCoefficient: 2,
      nonRetryableErrorTypes: [WebhookFailure.NotEnabled],
    },
  });
  let woken = false;
  setHandler(webhookWakeSignal, () => {
    woken = true;
  });
  /** Temporal's retries of one event; false when the subscription is no longer enabled (the run ends). */
  const deliverOne = async (seq: number): Promise<boolean> => {
    try {
      await deliverWebhookEvent({ subscriptionId: input.subscriptionId, seq });
    } catch (err) {
      const cause = err instanceof ActivityFailure ? err.cause : undefined;
      if (cause instanceof ApplicationFailure && cause.type === WebhookFailure.NotEnabled) return false;
      await deadLetterWebhookEvent({ subscriptionId: input.subscriptionId, seq });
    }
    return true;
  };
  for (;;) {
    woken = false;
    let more: boolean;
    if (patched(WEBHOOK_BATCH_PATCH)) {
      const batch = await deliverWebhookBatch({ subscriptionId: input.subscriptionId, limit: BATCH });
      if (batch.state !== 'enabled') return batch.state;
      if (batch.failedSeq !== undefined) {
        // The batch's attempt was the first; the retries wait WEBHOOK_RETRY_INITIAL and back off from there.
        await sleep(durationMs(input.settings.retryInitial));
        if (!(await deliverOne(batch.failedSeq))) return 'disabled';
      }
      more = batch.more;
    } else {
      const batch = await nextWebhookBatch({ subscriptionId: input.subscriptionId, limit: BATCH });
      if (batch.state !== 'enabled') return batch.state;
      for (const seq of batch.seqs) if (!(await deliverOne(seq))) return 'disabled';
      more = batch.seqs.length >= BATCH;
    }
    if (!more) {
      if (workflowInfo().continueAsNewSuggested) await continueAsNew<typeof webhookDeliveryWorkflow>(input);
      if (!woken) await condition(() => woken, durationMs(input.settings.pollInterval));
    }
  }
}
