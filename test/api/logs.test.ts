import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { Writable } from 'node:stream';
import pino from 'pino';
import { createApp } from '../../api/app';
import { createAuthenticator } from '../../api/auth';
import { REDACTED_PATHS } from '../../platform/logger';
import { testEnv } from '../setup/env';
import { testApiConfig } from '../helpers/platform';
import { makeUsers } from '../helpers/users';

describe('API logs', () => {
  const lines: string[] = [];
  let server: Server;
  let base: string;

  before(async () => {
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const log = pino({ level: 'info', redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, sink);
    const config = testApiConfig('logs-test');
    const app = createApp({
      db: testEnv().db,
      temporal: testEnv().client,
      config,
      log,
      authenticate: createAuthenticator(testEnv().db, 1000),
    });
    server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('write one JSON line per request with its request ID and actor, and never the API key, a password or a body', async () => {
    const { author } = await makeUsers({ author: ['author'] });
    const secretPassword = 'never-log-this-password-42';
    const res = await fetch(`${base}/api/v1/documents/DOC-9999/versions/1/decisions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${author.apiKey}`, 'content-type': 'application/json', 'x-request-id': 'trace-me-123' },
      body: JSON.stringify({
        decision: 'approve',
        signature: { password: secretPassword, meaning: 'approval', contentHash: 'a'.repeat(64) },
      }),
    });
    assert.equal(res.status, 404);
    await fetch(`${base}/api/v1/documents`, { headers: { authorization: 'Bearer lf_000000000000_not-a-real-key-but-long' } });

    const entries = lines.map((line) => JSON.parse(line));
    const traced = entries.find((e) => e.requestId === 'trace-me-123');
    assert.ok(traced, 'the request line carries the caller’s request ID');
    assert.equal(traced.status, 404);
    assert.equal(traced.actor, author.username);
    const all = lines.join('\n');
    assert.ok(!all.includes(author.apiKey), 'no API key in the logs');
    assert.ok(!all.includes('not-a-real-key'), 'no rejected key in the logs');
    assert.ok(!all.includes(secretPassword), 'no password in the logs');
  });

  it('censor secret fields if any code passes them to the logger', () => {
    const captured: string[] = [];
    const log = pino(
      { redact: { paths: REDACTED_PATHS, censor: '[redacted]' } },
      new Writable({
        write(chunk, _e, done) {
          captured.push(chunk.toString());
          done();
        },
      }),
    );
    log.info({ password: 'p1', signature: { password: 'p2' }, req: { headers: { authorization: 'Bearer k' } }, content: 'SOP text' }, 'x');
    const entry = JSON.parse(captured[0]);
    assert.equal(entry.password, '[redacted]');
    assert.equal(entry.signature.password, '[redacted]');
    assert.equal(entry.req.headers.authorization, '[redacted]');
    assert.equal(entry.content, '[redacted]');
  });
});
