import { IncomingWebhook, IncomingWebhookHTTPError, type FetchFunction } from '@slack/webhook';
import { describe, retryAfterMs, type ChannelOutcome } from './outcome';

/**
 * Posts a message to a Slack incoming webhook with the official client (its own retries off: Temporal retries).
 * Slack answers 200 "ok"; 400/403/404/410 with a reason (invalid_payload, invalid_token, no_service,
 * channel_is_archived) will not change on a retry; 429 carries Retry-After; 5xx and network failures are retried.
 */
export async function postToSlack(url: string, text: string, timeoutMs: number): Promise<ChannelOutcome> {
  let retryAfter: string | null = null;
  const fetchRecordingRetryAfter: FetchFunction = async (input, init) => {
    const res = await fetch(input, init as RequestInit);
    retryAfter = res.headers.get('retry-after');
    return res;
  };
  const webhook = new IncomingWebhook(url, { fetch: fetchRecordingRetryAfter, timeout: timeoutMs });
  try {
    await webhook.send({ text, unfurl_links: false, unfurl_media: false });
    return { kind: 'sent' };
  } catch (err) {
    if (err instanceof IncomingWebhookHTTPError) {
      const detail = `Slack answered ${err.statusCode} ${err.body.slice(0, 100)}`.trim();
      if (err.statusCode === 429) return { kind: 'retry', detail, retryAfterMs: retryAfterMs(retryAfter) };
      if (err.statusCode >= 400 && err.statusCode < 500) return { kind: 'refused', detail };
      return { kind: 'retry', detail };
    }
    return { kind: 'retry', detail: describe(err) };
  }
}
