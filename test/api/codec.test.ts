import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { createApp } from '../../api/app';
import { createAuthenticator } from '../../api/auth';
import { toProblem } from '../../api/error-handler';
import { createLogger } from '../../platform/logger';
import {
  AesGcmPayloadCodec,
  ENCRYPTED_ENCODING,
  generatePayloadKeys,
  KEY_ID_METADATA,
  parsePayloadKeys,
  UnencryptedPayloadError,
} from '../../platform/payload-codec';
import { startPlatform, TEST_UI_ORIGIN, testApiConfig, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';
import { assertProblem } from './support';

interface JsonPayload {
  metadata: Record<string, string>;
  data: string;
}

const b64 = (s: string) => Buffer.from(s).toString('base64');
const unb64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');
const toJson = (p: Payload): JsonPayload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v!).toString('base64')])),
  data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
});
const fromJson = (p: JsonPayload): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: Buffer.from(p.data, 'base64'),
});
/** A payload as the Web UI sends it: JSON with base64 metadata values and data. */
const jsonPayload = (value: unknown) => toJson(defaultPayloadConverter.toPayload(value) as Payload);

describe('the codec endpoint for the Temporal Web UI and CLI', () => {
  let p: Platform;
  let u: Record<'operator' | 'admin' | 'technician', TestUser>;
  const codec = () => testEnv().dataConverter.payloadCodecs![0];
  const decodeAs = (key: string | undefined, payloads: unknown[], headers: Record<string, string> = {}) =>
    p.api('POST', '/codec/decode', { key, body: { payloads }, headers });

  before(async () => {
    p = await startPlatform({ withWorker: false });
    u = await makeUsers({ operator: ['it_operator'], admin: ['admin'], technician: ['lab_technician'] });
  });
  after(() => p.stop());

  const decodeAudits = (username: string) =>
    testEnv()
      .db('audit_events')
      .where({ action: 'codec.decode', actor: username })
      .orderBy('seq')
      .select('entity_type', 'entity_id', 'details');

  it('answers 401 without an API key and 403 to a role that may not see payloads, and audits neither', async () => {
    const [encrypted] = await codec().encode([defaultPayloadConverter.toPayload('hidden') as Payload]);
    const anonymous = await decodeAs(undefined, [toJson(encrypted)]);
    assertProblem(anonymous, 401, 'unauthenticated');
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer/);
    assertProblem(await decodeAs('not-a-key', [toJson(encrypted)]), 401, 'unauthenticated');
    const technician = await decodeAs(u.technician.apiKey, [toJson(encrypted)]);
    assertProblem(technician, 403, 'forbidden');
    assert.doesNotMatch(JSON.stringify(technician.body), /hidden/);
    assertProblem(await p.api('POST', '/codec/encode', { key: u.technician.apiKey, body: { payloads: [] } }), 403, 'forbidden');
    assert.deepEqual(await decodeAudits(u.technician.username), []);
  });

  it('decodes for an IT operator, in the remote-codec JSON format, and audits who, where and which keys, never the contents', async () => {
    const marker = `note-${randomBytes(4).toString('hex')}`;
    const encrypted = await codec().encode([defaultPayloadConverter.toPayload({ marker }) as Payload]);
    const plain = jsonPayload('recorded before encryption');
    const res = await decodeAs(u.operator.apiKey, [toJson(encrypted[0]), plain], { 'x-namespace': 'lab-prod' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(res.body.payloads.length, 2);
    assert.equal(unb64(res.body.payloads[0].metadata.encoding), 'json/plain');
    assert.deepEqual(JSON.parse(unb64(res.body.payloads[0].data)), { marker });
    assert.deepEqual(res.body.payloads[1], plain, 'a payload that is not encrypted comes back as it was');

    const audits = await decodeAudits(u.operator.username);
    assert.equal(audits.length, 1);
    assert.equal(audits[0].entity_type, 'temporal-namespace');
    assert.equal(audits[0].entity_id, 'lab-prod');
    assert.deepEqual(audits[0].details, { payloads: 2, keyIds: ['test-current'] });
    assert.doesNotMatch(JSON.stringify(audits[0]), new RegExp(marker));
  });

  it("lets an admin decode too, under the client's namespace when the caller names none", async () => {
    const [encrypted] = await codec().encode([defaultPayloadConverter.toPayload(1) as Payload]);
    const res = await decodeAs(u.admin.apiKey, [toJson(encrypted)]);
    assert.equal(res.status, 200);
    assert.deepEqual(
      (await decodeAudits(u.admin.username)).map((a) => a.entity_id),
      ['default'],
    );
  });

  const encodeAudits = (username: string) =>
    testEnv()
      .db('audit_events')
      .where({ action: 'codec.encode', actor: username })
      .orderBy('seq')
      .select('entity_type', 'entity_id', 'details');

  it('refuses to encode for an IT operator (403, audited nowhere): an encrypted payload is what the worker trusts', async () => {
    const res = await p.api('POST', '/codec/encode', { key: u.operator.apiKey, body: { payloads: [jsonPayload({ dose: '5 mg' })] } });
    assertProblem(res, 403, 'forbidden');
    assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.doesNotMatch(JSON.stringify(res.body), /5 mg/);
    assert.deepEqual(await encodeAudits(u.operator.username), []);
    const session = await p.api('POST', '/codec/session', { key: u.operator.apiKey });
    const cookie = `labflow_codec=${/labflow_codec=([^;]+)/.exec(session.headers.get('set-cookie') ?? '')?.[1]}`;
    assertProblem(await p.api('POST', '/codec/encode', { headers: { cookie }, body: { payloads: [] } }), 403, 'forbidden');
  });

  it('encodes for an admin with the current key what the platform decodes, and audits who, how many and which key, never the contents', async () => {
    const res = await p.api('POST', '/codec/encode', {
      key: u.admin.apiKey,
      body: { payloads: [jsonPayload({ dose: '5 mg' }), jsonPayload(2)] },
      headers: { 'x-namespace': 'lab-prod' },
    });
    assert.equal(res.status, 200);
    const [encoded] = res.body.payloads as JsonPayload[];
    assert.equal(unb64(encoded.metadata.encoding), ENCRYPTED_ENCODING);
    assert.equal(unb64(encoded.metadata[KEY_ID_METADATA]), 'test-current');
    const [decoded] = await codec().decode([fromJson(encoded)]);
    assert.deepEqual(defaultPayloadConverter.fromPayload(decoded), { dose: '5 mg' });

    const audits = await encodeAudits(u.admin.username);
    assert.equal(audits.length, 1);
    assert.equal(audits[0].entity_type, 'temporal-namespace');
    assert.equal(audits[0].entity_id, 'lab-prod');
    assert.deepEqual(audits[0].details, { payloads: 2, keyIds: ['test-current'] });
    assert.doesNotMatch(JSON.stringify(audits[0]), /5 mg/);
  });

  it('decodes payloads that are not encrypted as they are, even though the API refuses them from Temporal (a 502)', async () => {
    const plain = jsonPayload('sent in clear');
    const res = await decodeAs(u.operator.apiKey, [plain]);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.payloads, [plain]);
    const problem = toProblem(new UnencryptedPayloadError());
    assert.equal(problem?.status, 502);
    assert.match(String(problem?.body('/x').detail), /arrived unencrypted/);
  });

  it('decodes what an older configured key encrypted', async () => {
    const older = parsePayloadKeys(testEnv().payloadKeys.split(',')[1]);
    assert.equal(older.current.id, 'test-previous');
    const [encrypted] = await new AesGcmPayloadCodec(older).encode([defaultPayloadConverter.toPayload('old') as Payload]);
    const before = (await decodeAudits(u.operator.username)).length;
    const res = await decodeAs(u.operator.apiKey, [toJson(encrypted)]);
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(unb64(res.body.payloads[0].data)), 'old');
    const audits = await decodeAudits(u.operator.username);
    assert.deepEqual(audits[before].details, { payloads: 1, keyIds: ['test-previous'] });
  });

  it('answers 422 naming the key ID for a payload encrypted with a key it does not have, and audits nothing', async () => {
    const [foreign] = await new AesGcmPayloadCodec(parsePayloadKeys(generatePayloadKeys('elsewhere'))).encode([
      defaultPayloadConverter.toPayload('x') as Payload,
    ]);
    const before = (await decodeAudits(u.operator.username)).length;
    const res = await decodeAs(u.operator.apiKey, [toJson(foreign)]);
    assertProblem(res, 422, 'undecodable-payload');
    assert.match(res.body.detail, /key ID "elsewhere"/);
    assert.equal((await decodeAudits(u.operator.username)).length, before);
  });

  describe('CORS for the Web UI', () => {
    const preflight = (origin: string) =>
      p.api('OPTIONS', '/codec/decode', {
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization,content-type,x-namespace',
        },
      });

    it("answers the preflight of the Web UI's origin, with credentials and the headers the UI sends", async () => {
      const res = await preflight(TEST_UI_ORIGIN);
      assert.equal(res.status, 204);
      assert.equal(res.headers.get('access-control-allow-origin'), TEST_UI_ORIGIN);
      assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
      assert.match(res.headers.get('access-control-allow-methods') ?? '', /POST/);
      const allowed = (res.headers.get('access-control-allow-headers') ?? '').split(/,\s*/);
      for (const header of ['authorization', 'content-type', 'x-namespace']) assert.ok(allowed.includes(header), header);
      assert.match(res.headers.get('vary') ?? '', /origin/i);
    });

    it('sets the allowed origin on the answer itself', async () => {
      const [encrypted] = await codec().encode([defaultPayloadConverter.toPayload('ui') as Payload]);
      const res = await decodeAs(u.operator.apiKey, [toJson(encrypted)], { origin: TEST_UI_ORIGIN });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('access-control-allow-origin'), TEST_UI_ORIGIN);
    });

    it('refuses another origin, in the preflight and in the request, without any CORS grant', async () => {
      const res = await preflight('https://evil.example');
      assertProblem(res, 403, 'forbidden');
      assert.equal(res.headers.get('access-control-allow-origin'), null);
      const [encrypted] = await codec().encode([defaultPayloadConverter.toPayload('ui') as Payload]);
      const direct = await decodeAs(u.operator.apiKey, [toJson(encrypted)], { origin: 'https://evil.example' });
      assertProblem(direct, 403, 'forbidden');
      assert.equal(direct.headers.get('access-control-allow-origin'), null);
      assert.doesNotMatch(JSON.stringify(direct.body), /"ui"/);
    });
  });

  describe('a browser session for the Web UI, which sends cookies rather than API keys', () => {
    const cookieOf = (res: { headers: Headers }) => /labflow_codec=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')?.[1];

    it('serves a sign-in page', async () => {
      const page = await p.api('GET', '/codec/login');
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type') ?? '', /text\/html/);
      assert.match(page.body, /Include cross-origin credentials/);
    });

    it('opens an HttpOnly, same-site session for an operator, with which the UI decodes; signing out ends it', async () => {
      const opened = await p.api('POST', '/codec/session', { key: u.operator.apiKey });
      assert.equal(opened.status, 200, JSON.stringify(opened.body));
      const setCookie = opened.headers.get('set-cookie') ?? '';
      assert.match(setCookie, /httponly/i);
      assert.match(setCookie, /samesite=strict/i);
      assert.match(setCookie, /path=\/codec/i);
      const token = cookieOf(opened)!;
      const stored = await testEnv().db('codec_sessions').pluck('token_hash');
      assert.ok(!stored.includes(token), 'only a hash of the token is kept');

      const [encrypted] = await codec().encode([defaultPayloadConverter.toPayload('from the ui') as Payload]);
      const cookie = `labflow_codec=${token}`;
      const decoded = await decodeAs(undefined, [toJson(encrypted)], { cookie, origin: TEST_UI_ORIGIN });
      assert.equal(decoded.status, 200, JSON.stringify(decoded.body));
      assert.equal(unb64(decoded.body.payloads[0].data), '"from the ui"');
      assert.equal(decoded.headers.get('access-control-allow-credentials'), 'true');
      assert.ok((await decodeAudits(u.operator.username)).length > 0);

      assert.equal((await p.api('POST', '/codec/logout', { headers: { cookie } })).status, 204);
      assertProblem(await decodeAs(undefined, [toJson(encrypted)], { cookie }), 401, 'unauthenticated');
    });

    it('opens no session for a role that may not decode, nor for a forged cookie', async () => {
      assertProblem(await p.api('POST', '/codec/session', { key: u.technician.apiKey }), 403, 'forbidden');
      assertProblem(await p.api('POST', '/codec/session'), 401, 'unauthenticated');
      const [encrypted] = await codec().encode([defaultPayloadConverter.toPayload('x') as Payload]);
      assertProblem(await decodeAs(undefined, [toJson(encrypted)], { cookie: 'labflow_codec=forged' }), 401, 'unauthenticated');
    });
  });

  describe('bad input', () => {
    const post = (init: { raw?: string; body?: unknown; headers?: Record<string, string> }) =>
      p.api('POST', '/codec/decode', { key: u.operator.apiKey, ...init });

    it('answers 400 to a body that is not JSON, or not the payloads shape', async () => {
      assertProblem(await post({ raw: '{"payloads": [' }), 400, 'malformed-json');
      assertProblem(await post({ raw: '' }), 400, 'validation', 'body.payloads');
      assertProblem(await post({ body: { payload: [] } }), 400, 'validation', 'body.payloads');
      assertProblem(await post({ body: { payloads: [{ data: 'not base64!' }] } }), 400, 'validation', 'body.payloads.0.data');
      assertProblem(
        await post({ body: { payloads: [{ metadata: { encoding: 42 } }] } }),
        400,
        'validation',
        'body.payloads.0.metadata.encoding',
      );
      assertProblem(
        await post({ body: { payloads: [] }, headers: { 'x-namespace': 'no spaces allowed' } }),
        400,
        'validation',
        'headers.x-namespace',
      );
      assertProblem(await post({ raw: 'payloads=1', headers: { 'content-type': 'text/plain' } }), 415, 'unsupported-media-type');
    });

    it('answers 413 to a body over the limit', async () => {
      const big = b64('x'.repeat(testApiConfig('x').bodyLimitBytes));
      assertProblem(await post({ body: { payloads: [{ metadata: {}, data: big }] } }), 413, 'payload-too-large');
    });
  });

  describe('with payload encryption off', () => {
    let server: Server;
    let baseUrl: string;
    before(async () => {
      const env = testEnv();
      const config = testApiConfig('codec-off');
      const app = createApp({
        db: env.db,
        temporal: env.client,
        config,
        log: createLogger({ LOG_LEVEL: 'silent', LOG_PRETTY: false }, 'test'),
        authenticate: createAuthenticator(env.db, config.apiKeyCacheTtlMs),
      });
      server = await new Promise((resolve) => {
        const s = app.listen(0, '127.0.0.1', () => resolve(s));
      });
      baseUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    });
    after(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it('answers 503 payload-encryption-off to an authorized caller', async () => {
      const res = await fetch(`${baseUrl}/codec/decode`, {
        method: 'POST',
        headers: { authorization: `Bearer ${u.operator.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ payloads: [] }),
      });
      assert.equal(res.status, 503);
      assert.equal(((await res.json()) as { type: string }).type, 'urn:labflow:problem:payload-encryption-off');
    });
  });
});
