import { deliverySettings, DEFAULT_WEBHOOK_SETTINGS, webhookDeliveryWorkflowId, webhookWakeSignal } from '../../common/webhook-delivery';
import type { webhookDeliveryWorkflow } from '../../workflows';
import type { ApiDeps } from '../deps';

/**
 * Starts a subscription's delivery run, or wakes the one that is running. The change that asked for it has
 * committed; a Temporal outage is logged, and the worker's wake-ups start the run at the next event.
 */
export async function wakeWebhookDelivery(deps: Pick<ApiDeps, 'temporal' | 'config' | 'log'>, subscriptionId: string): Promise<void> {
  try {
    await deps.temporal.workflow.signalWithStart<typeof webhookDeliveryWorkflow>('webhookDeliveryWorkflow', {
      workflowId: webhookDeliveryWorkflowId(subscriptionId),
      taskQueue: deps.config.taskQueue,
      args: [{ subscriptionId, settings: deliverySettings(deps.config.webhooks ?? DEFAULT_WEBHOOK_SETTINGS) }],
      signal: webhookWakeSignal,
      signalArgs: [],
    });
  } catch (err) {
    deps.log.error({ subscriptionId, err: err instanceof Error ? err.name : String(err) }, 'could not wake the webhook delivery run');
  }
}
