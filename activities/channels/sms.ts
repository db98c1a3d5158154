import twilio from 'twilio';
import RequestClient from 'twilio/lib/base/RequestClient';
import { describe, retryAfterMs, type ChannelOutcome } from './outcome';

export interface TwilioSettings {
  accountSid: string;
  authToken: string;
  fromNumber: string;
  /** Twilio's REST API origin (TWILIO_API_URL): https://api.twilio.com, or a proxy in front of it. */
  apiUrl: string;
  timeoutMs: number;
}

/** Error codes of Twilio's Messages API that no retry will change: the number, the recipient or the account. */
const PERMANENT_CODES = new Set([21211, 21212, 21408, 21601, 21602, 21606, 21608, 21610, 21612, 21614, 21617, 20003, 20404]);

/**
 * The SDK's request client with the API's origin replaced by the configured one, and the last Retry-After kept
 * (the SDK's RestException carries the status and code, not the headers).
 */
class ConfiguredOriginClient extends RequestClient {
  retryAfter: string | null = null;

  constructor(private readonly origin: string, timeoutMs: number) {
    super({ timeout: timeoutMs, autoRetry: false, keepAlive: false });
  }

  override async request<TData>(opts: RequestClient.RequestOptions<TData>) {
    const target = new URL(opts.uri);
    const base = new URL(this.origin);
    target.protocol = base.protocol;
    target.host = base.host;
    const response = await super.request({ ...opts, uri: target.toString() });
    this.retryAfter = (response.headers as Record<string, string | undefined>)?.['retry-after'] ?? null;
    return response;
  }
}

/** Sends one SMS through Twilio's Messages API with the official SDK. */
export async function sendSms(settings: TwilioSettings, to: string, body: string): Promise<ChannelOutcome> {
  const httpClient = new ConfiguredOriginClient(settings.apiUrl, settings.timeoutMs);
  const client = twilio(settings.accountSid, settings.authToken, { httpClient, autoRetry: false });
  try {
    const message = await client.messages.create({ to, from: settings.fromNumber, body });
    return { kind: 'sent', providerId: message.sid };
  } catch (err) {
    const status = (err as { status?: number }).status;
    const code = (err as { code?: number }).code;
    if (typeof status !== 'number') return { kind: 'retry', detail: describe(err) };
    const detail = `Twilio answered ${status}${code ? ` (error ${code})` : ''}`;
    if (status === 429) return { kind: 'retry', detail, retryAfterMs: retryAfterMs(httpClient.retryAfter) };
    if ((code !== undefined && PERMANENT_CODES.has(code)) || (status >= 400 && status < 500)) return { kind: 'refused', detail };
    return { kind: 'retry', detail };
  }
}
