import { randomBytes } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';

/** A scripted answer of Twilio's Messages API. */
export interface TwilioAnswer {
  status: number;
  code?: number;
  message?: string;
  headers?: Record<string, string>;
}

export const TWILIO = {
  invalidNumber: { status: 400, code: 21211, message: "The 'To' number is not a valid phone number." },
  tooManyRequests: (retryAfterSeconds: number): TwilioAnswer => ({
    status: 429,
    code: 20429,
    message: 'Too Many Requests',
    headers: { 'retry-after': String(retryAfterSeconds) },
  }),
  serverError: { status: 500, code: 20500, message: 'Internal Server Error' },
} satisfies Record<string, TwilioAnswer | ((n: number) => TwilioAnswer)>;

export interface Sms {
  to: string;
  from: string;
  body: string;
  sid: string;
}

/**
 * A local server speaking Twilio's Messages API: POST /2010-04-01/Accounts/{Sid}/Messages.json, form-encoded, with
 * HTTP basic auth of the account SID and auth token; 201 and the message's JSON, or Twilio's error JSON
 * ({code, message, more_info, status}). Answers are scripted per destination number (in order, then 201 again).
 */
export async function startTwilioServer(): Promise<{
  url: string;
  accountSid: string;
  authToken: string;
  sent: Sms[];
  attempts: (to: string) => number;
  script(to: string, answers: TwilioAnswer[]): void;
  stop(): Promise<void>;
}> {
  const accountSid = `AC${randomBytes(16).toString('hex')}`;
  const authToken = randomBytes(16).toString('hex');
  const sent: Sms[] = [];
  const counts = new Map<string, number>();
  const scripts = new Map<string, TwilioAnswer[]>();
  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const error = (res: ServerResponse, a: TwilioAnswer) =>
    json(res, a.status, { code: a.code, message: a.message, more_info: `https://www.twilio.com/docs/errors/${a.code}`, status: a.status }, a.headers);

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const expectedPath = `/2010-04-01/Accounts/${accountSid}/Messages.json`;
      if (req.method !== 'POST' || req.url !== expectedPath) return error(res, { status: 404, code: 20404, message: 'The requested resource was not found' });
      const auth = req.headers.authorization ?? '';
      if (auth !== `Basic ${Buffer.from(`${accountSid}:${authToken}`).toString('base64')}`)
        return error(res, { status: 401, code: 20003, message: 'Authenticate' });
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const to = form.get('To') ?? '';
      counts.set(to, (counts.get(to) ?? 0) + 1);
      const scripted = scripts.get(to);
      const answer = scripted?.shift() ?? null;
      if (answer && answer.status >= 300) return error(res, answer);
      if (!to || !form.get('From') || !form.get('Body')) return error(res, { status: 400, code: 21604, message: "A 'To' phone number is required." });
      const sid = `SM${randomBytes(16).toString('hex')}`;
      const message = { to, from: form.get('From')!, body: form.get('Body')!, sid };
      sent.push(message);
      const now = new Date().toUTCString();
      json(res, 201, {
        account_sid: accountSid,
        api_version: '2010-04-01',
        body: message.body,
        date_created: now,
        date_sent: null,
        date_updated: now,
        direction: 'outbound-api',
        error_code: null,
        error_message: null,
        from: message.from,
        num_media: '0',
        num_segments: '1',
        price: null,
        price_unit: 'USD',
        sid,
        status: 'queued',
        to,
        uri: `/2010-04-01/Accounts/${accountSid}/Messages/${sid}.json`,
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    url,
    accountSid,
    authToken,
    sent,
    attempts: (to) => counts.get(to) ?? 0,
    script: (to, answers) => void scripts.set(to, [...answers]),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
