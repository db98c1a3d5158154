import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { SMTPServer } from 'smtp-server';
import { createMailer } from '../../activities/mailer';
import { createApp } from '../../api/app';
import { createAuthenticator } from '../../api/auth';
import { createApiServer } from '../../api/hardening/tls-server';
import { withDatabaseTls } from '../../common/config';
import { createDb } from '../../db/knex';
import { createLogger } from '../../platform/logger';
import { testEnv } from '../setup/env';
import { startPlatform, testApiConfig, type ApiResponse, type Platform } from '../helpers/platform';
import { makeUsers } from '../helpers/users';

const ALLOWED_ORIGIN = 'https://lims.lab.test';

function assertSecurityHeaders(res: ApiResponse): void {
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(res.headers.get('x-frame-options'), 'SAMEORIGIN');
  assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  assert.match(res.headers.get('strict-transport-security') ?? '', /max-age=\d+/);
  assert.equal(res.headers.get('x-powered-by'), null);
  assert.equal(res.headers.get('cache-control'), 'no-store');
}

/** A self-signed certificate for 127.0.0.1, made with openssl as an operator would. */
function makeCertificate(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'tls.pem');
  const key = join(dir, 'tls.key');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-keyout', key, '-out', cert, '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
  ], { stdio: 'ignore' });
  return { cert, key };
}

describe('security headers, CORS and TLS', () => {
  let p: Platform;
  let dir: string;
  before(async () => {
    p = await startPlatform({ withWorker: false, apiConfig: { corsOrigins: [ALLOWED_ORIGIN] } });
    dir = mkdtempSync(join(tmpdir(), 'labflow-tls-'));
  });
  after(async () => {
    await p.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends helmet’s headers and Cache-Control: no-store on answers with PHI, on errors and on health', async () => {
    const { clinician } = await makeUsers({ clinician: ['clinician'] });
    const created = await p.api('POST', '/api/v1/patients', {
      key: clinician.apiKey,
      body: { givenName: 'Ada', familyName: 'Harden', dateOfBirth: '1980-02-03' },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const read = await p.api('GET', `/api/v1/patients/${created.body.id}`, { key: clinician.apiKey });
    assert.equal(read.status, 200);
    for (const res of [created, read, await p.api('GET', '/api/v1/samples', { key: clinician.apiKey }), await p.api('GET', '/api/v1/nowhere'), await p.api('GET', '/healthz')]) {
      assertSecurityHeaders(res);
    }
    assertSecurityHeaders(await p.api('POST', '/codec/decode', { body: { payloads: [] } }));
  });

  it('answers CORS only to the origins of CORS_ORIGINS', async () => {
    const { author } = await makeUsers({ author: ['author'] });
    const preflight = await p.api('OPTIONS', '/api/v1/documents', {
      headers: { origin: ALLOWED_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), ALLOWED_ORIGIN);
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /Authorization/);
    const allowed = await p.api('GET', '/api/v1/documents', { key: author.apiKey, headers: { origin: ALLOWED_ORIGIN } });
    assert.equal(allowed.headers.get('access-control-allow-origin'), ALLOWED_ORIGIN);
    assert.match(allowed.headers.get('access-control-expose-headers') ?? '', /RateLimit-Remaining/);
    assert.equal(allowed.headers.get('access-control-allow-credentials'), null);

    const other = await p.api('GET', '/api/v1/documents', { key: author.apiKey, headers: { origin: 'https://evil.example' } });
    assert.equal(other.headers.get('access-control-allow-origin'), null);
    const otherPreflight = await p.api('OPTIONS', '/api/v1/documents', {
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    assert.equal(otherPreflight.headers.get('access-control-allow-origin'), null);
  });

  it('serves HTTPS with TLS_CERT_FILE and TLS_KEY_FILE, and refuses one without the other', async () => {
    const { cert, key } = makeCertificate(dir);
    const app = createApp({
      db: testEnv().appDb,
      temporal: testEnv().client,
      config: testApiConfig('tls-test'),
      log: createLogger({ LOG_LEVEL: 'silent', LOG_PRETTY: false }, 'test'),
      authenticate: createAuthenticator(testEnv().appDb, 1000),
    });
    assert.throws(() => createApiServer(app, { certFile: cert }), /both TLS_CERT_FILE and TLS_KEY_FILE/);
    const { server, scheme } = createApiServer(app, { certFile: cert, keyFile: key });
    assert.equal(scheme, 'https');
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as { port: number }).port;
      const get = (ca?: Buffer) =>
        new Promise<{ status: number; secure: boolean }>((resolve, reject) => {
          const req = request({ host: '127.0.0.1', port, path: '/healthz', ca }, (res) => {
            res.resume();
            resolve({ status: res.statusCode ?? 0, secure: true });
          });
          req.on('error', reject);
          req.end();
        });
      const { readFileSync } = await import('node:fs');
      assert.deepEqual(await get(readFileSync(cert)), { status: 200, secure: true });
      await assert.rejects(get(), /self[- ]signed/i, 'a client that does not trust the certificate is refused');
      await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`), 'no clear text on the TLS port');
    } finally {
      await new Promise<void>((resolve) => (server as Server).close(() => resolve()));
    }
  });

  it('connects to PostgreSQL over TLS as DATABASE_SSLMODE says, with libpq’s meanings', async () => {
    const ssl = async (url: string) => {
      const db = createDb(url, 1);
      try {
        return (await db.raw('select ssl from pg_stat_ssl where pid = pg_backend_pid()')).rows[0].ssl as boolean;
      } finally {
        await db.destroy();
      }
    };
    const url = testEnv().databaseUrl;
    const serverHasTls = await ssl(withDatabaseTls(url, { DATABASE_SSLMODE: 'require' })).catch(() => null);
    if (serverHasTls === null) {
      // A server without TLS refuses `require`; that refusal is the setting working.
      await assert.rejects(ssl(withDatabaseTls(url, { DATABASE_SSLMODE: 'require' })));
      return;
    }
    assert.equal(serverHasTls, true, 'require encrypts');
    assert.equal(await ssl(withDatabaseTls(url, { DATABASE_SSLMODE: 'disable' })), false);
    // The test server's certificate is its own (snake-oil): verify-full without a CA that signed it refuses.
    await assert.rejects(ssl(withDatabaseTls(url, { DATABASE_SSLMODE: 'verify-full' })), /certificate/i);
    // What the URL says wins over the setting.
    assert.equal(await ssl(withDatabaseTls(`${url}?sslmode=disable`, { DATABASE_SSLMODE: 'require' })), false);
  });

  it('sends mail over implicit TLS with the relay’s CA, and refuses to send in clear when SMTP_TLS=starttls', async () => {
    const { cert, key } = makeCertificate(dir);
    const { readFileSync } = await import('node:fs');
    const received: string[] = [];
    const relay = new SMTPServer({
      secure: true,
      key: readFileSync(key),
      cert: readFileSync(cert),
      authOptional: true,
      logger: false,
      onData(stream, _session, done) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          received.push(Buffer.concat(chunks).toString());
          done();
        });
      },
    });
    relay.on('error', () => {}); // the untrusting client below hangs up in the handshake: expected
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const port = (relay.server.address() as { port: number }).port;
    const mail = { messageId: '<tls-test@lab.test>', to: 'qa@lab.test', subject: 'over TLS', text: 'hello' };
    try {
      const tls = createMailer({ smtpUrl: `smtp://127.0.0.1:${port}`, from: 'labflow@lab.test', outboxDir: dir, tls: { mode: 'implicit', caFile: cert } });
      await tls.send(mail);
      tls.close();
      assert.equal(received.length, 1);
      const untrusted = createMailer({ smtpUrl: `smtp://127.0.0.1:${port}`, from: 'labflow@lab.test', outboxDir: dir, tls: { mode: 'implicit' } });
      await assert.rejects(untrusted.send(mail), /self[- ]signed|certificate/i);
      untrusted.close();
    } finally {
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    }
    // The run's sink offers no STARTTLS: with SMTP_TLS=starttls nothing goes out in clear.
    const sent = testEnv().mails.length;
    const strict = createMailer({ smtpUrl: `smtp://127.0.0.1:${testEnv().smtpPort}`, from: 'labflow@lab.test', outboxDir: dir, tls: { mode: 'starttls' } });
    await assert.rejects(strict.send(mail), /STARTTLS/i);
    strict.close();
    assert.equal(testEnv().mails.length, sent);
  });
});
