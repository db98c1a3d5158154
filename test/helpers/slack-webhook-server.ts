import { createServer, type Server } from 'node:http';

/** A scripted answer of Slack's incoming-webhook endpoint. */
export interface SlackAnswer {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

/** Slack's answers as its documentation lists them. */
export const SLACK = {
  ok: { status: 200, body: 'ok' },
  noService: { status: 404, body: 'no_service' },
  invalidToken: { status: 403, body: 'invalid_token' },
  rateLimited: (retryAfterSeconds: number): SlackAnswer => ({ status: 429, body: 'rate_limited', headers: { 'retry-after': String(retryAfterSeconds) } }),
  serverError: { status: 500, body: 'internal_error' },
} satisfies Record<string, SlackAnswer | ((n: number) => SlackAnswer)>;

export interface SlackPost {
  path: string;
  text: string;
  body: Record<string, unknown>;
}

/**
 * A local server speaking Slack's incoming-webhook protocol: POST a JSON message to /services/T../B../secret,
 * answered 200 "ok" unless a path has answers scripted (taken in order, then 200 again).
 */
export async function startSlackWebhookServer(): Promise<{
  url: string;
  posts: SlackPost[];
  attempts: (path: string) => number;
  script(path: string, answers: SlackAnswer[]): void;
  stop(): Promise<void>;
}> {
  const posts: SlackPost[] = [];
  const counts = new Map<string, number>();
  const scripts = new Map<string, SlackAnswer[]>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      counts.set(path, (counts.get(path) ?? 0) + 1);
      let answer: SlackAnswer = SLACK.ok;
      const scripted = scripts.get(path);
      if (scripted?.length) answer = scripted.shift()!;
      if (req.method !== 'POST' || !path.startsWith('/services/')) answer = SLACK.noService;
      else if (!/application\/json/.test(req.headers['content-type'] ?? '')) answer = { status: 400, body: 'invalid_payload' };
      if (answer.status === 200) {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        posts.push({ path, text: String(body.text ?? ''), body });
      }
      res.writeHead(answer.status, { 'content-type': 'text/html', ...answer.headers });
      res.end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    url,
    posts,
    attempts: (path) => counts.get(path) ?? 0,
    script: (path, answers) => void scripts.set(path, [...answers]),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
