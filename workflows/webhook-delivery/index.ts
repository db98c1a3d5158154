import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  continueAsNew,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../../activities';
import { durationMs } from '../../common/durations';
import { WebhookFailure, webhookWakeSignal, type WebhookDeliveryInput } from '../../common/webhook-delivery';
import { shortTransaction } from '../lib/activity-options';

const BATCH = 50;

/**
 * One long-lived run per subscription sends its events one at a time, in commit order: the next event waits until
 * the one before it was delivered or dead-lettered. Postgres holds the cursor, so a new run (after continue-as-new,
 * a re-enable or a lost run) resumes where the last one stopped. Wake-up signals carry nothing; what to send is
 * read from Postgres, so a signal cannot make the run send anything labflow did not record.
 */
export async function webhookDeliveryWorkflow(input: WebhookDeliveryInput): Promise<string> {
  const { nextWebhookBatch, deadLetterWebhookEvent } = proxyActivities<Activities>(shortTransaction);
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
  for (;;) {
    woken = false;
    const batch = await nextWebhookBatch({ subscriptionId: input.subscriptionId, limit: BATCH });
    if (batch.state !== 'enabled') return batch.state;
    for (const seq of batch.seqs) {
      try {
        await deliverWebhookEvent({ subscriptionId: input.subscriptionId, seq });
      } catch (err) {
        const cause = err instanceof ActivityFailure ? err.cause : undefined;
        if (cause instanceof ApplicationFailure && cause.type === WebhookFailure.NotEnabled) return 'disabled';
        await deadLetterWebhookEvent({ subscriptionId: input.subscriptionId, seq });
      }
    }
    if (batch.seqs.length < BATCH) {
      if (workflowInfo().continueAsNewSuggested) await continueAsNew<typeof webhookDeliveryWorkflow>(input);
      if (!woken) await condition(() => woken, durationMs(input.settings.pollInterval));
    }
  }
}
