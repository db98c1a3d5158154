import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { Webhook } from 'standardwebhooks';

export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  json: { id: string; type: string; version: number; timestamp: string; data: Record<string, unknown> };
  /** The status the receiver answered. */
  status: number;
  /** The secrets (of those the test gave) whose signature the standardwebhooks library verified. */
  verifiedWith: string[];
}

/**
 * A real HTTP receiver on 127.0.0.1 that verifies each delivery with the standardwebhooks library against the
 * secrets a test hands it, and answers what the test's script says (200 by default).
 */
export async function startReceiver() {
  const received: Received[] = [];
  const secrets = new Map<string, string[]>();
  /** A status, or a status after a delay (a slow or hanging receiver), or a redirect elsewhere. */
  type Answer = number | { status: number; delayMs?: number; location?: string };
  let answer: (r: { path: string; json: Received['json']; attempt: number }) => Answer = () => 200;
  const attempts = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const json = JSON.parse(body);
      const path = req.url ?? '/';
      const headers = req.headers;
      const verifiedWith = (secrets.get(path) ?? []).filter((secret) => {
        try {
          new Webhook(secret).verify(body, headers as Record<string, string>);
          return true;
        } catch {
          return false;
        }
      });
      const key = `${path} ${json.id}`;
      const attempt = (attempts.get(key) ?? 0) + 1;
      attempts.set(key, attempt);
      const given = answer({ path, json, attempt });
      const { status, delayMs = 0, location } = typeof given === 'number' ? { status: given } : given;
      received.push({ path, headers, body, json, status, verifiedWith });
      const reply = () => {
        if (!res.destroyed) res.writeHead(status, location ? { location } : {}).end();
      };
      if (delayMs > 0) setTimeout(reply, delayMs).unref();
      else reply();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    received,
    /** What the receiver at this path accepts as signatures (it verifies against each). */
    trust(path: string, ...s: string[]) {
      secrets.set(path, s);
    },
    script(fn: typeof answer) {
      answer = fn;
    },
    at: (path: string) => received.filter((r) => r.path === path),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
