import type Router from '@koa/router';
import type { Payload } from '@temporalio/common';
import type { Context, Next } from 'koa';
import { z } from 'zod';
import type { Actor, Role } from '../../common/roles';
import { appendAudit } from '../../db/audit';
import { closeCodecSession, codecSessionActor, openCodecSession } from '../../db/codec-sessions';
import { isEncrypted, keyIdOf, PayloadDecryptionError } from '../../platform/payload-codec';
import { requireRole } from '../auth';
import { readJsonBody } from '../body';
import type { ApiDeps } from '../deps';
import type { DocumentedOperation } from '../openapi';
import { Problem, problems } from '../problem';
import { parseOrProblem } from '../route';

/** Who may see decoded payloads (admin may call any route). */
export const CODEC_ROLES: readonly Role[] = ['it_operator'];

/**
 * Who may encrypt payloads: with payload keys configured an encrypted payload is what the worker accepts as coming
 * from labflow, so encoding one is minting it.
 */
export const ENCODE_ROLES: readonly Role[] = ['admin'];

const PATHS = ['/codec/encode', '/codec/decode'];
const SESSION_COOKIE = 'labflow_codec';
const SESSION_TTL_MS = 8 * 60 * 60 * 1000;
const ALLOWED_HEADERS = 'authorization, content-type, x-namespace';
const NAMESPACE = /^[A-Za-z0-9._-]{1,255}$/;

const base64 = z
  .string()
  .regex(/^[A-Za-z0-9+/_-]*={0,2}$/, 'expected base64')
  .refine((v) => v.replace(/=+$/, '').length % 4 !== 1, 'expected base64');

// The remote-codec protocol of the Temporal Web UI and CLI: proto3 JSON, so every bytes field is base64.
const codecBody = z.object({
  payloads: z.array(z.object({ metadata: z.record(z.string(), base64).optional(), data: base64.optional() })),
});
const codecAnswer = z.object({
  payloads: z.array(z.object({ metadata: z.record(z.string(), z.string().describe('base64')), data: z.string().describe('base64') })),
});
type JsonPayload = z.infer<typeof codecBody>['payloads'][number];

const fromJson = (p: JsonPayload): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))])),
  data: new Uint8Array(Buffer.from(p.data ?? '', 'base64')),
});

const toJson = (p: Payload) => ({
  metadata: Object.fromEntries(
    Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')]),
  ),
  data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
});

const namespaceHeader = {
  name: 'X-Namespace',
  in: 'header',
  required: false,
  description: "The Temporal namespace (audited); the API's own namespace when absent.",
  schema: { type: 'string', pattern: NAMESPACE.source },
};
const codecCall = (direction: 'encode' | 'decode'): DocumentedOperation => ({
  method: 'post',
  path: `/codec/${direction}`,
  summary:
    direction === 'encode'
      ? 'Encrypt payloads with the current payload key (admin): the remote codec of the Temporal CLI'
      : 'Decrypt payloads for the Temporal Web UI or CLI (IT operators, admin); every call audited',
  tag: 'codec',
  description: `Roles: ${(direction === 'encode' ? ENCODE_ROLES : CODEC_ROLES).join(', ')} (admin always). An API key, or the Web UI's codec session.`,
  security: ['apiKey', 'codecSession'],
  parameters: [namespaceHeader],
  body: codecBody,
  responses: {
    200: codecAnswer,
    ...Object.fromEntries([400, 401, 403, 413, 415, 503, ...(direction === 'decode' ? [422] : [])].map((s) => [s, 'problem' as const])),
  },
});

/** The codec's routes, for the OpenAPI document. */
export const codecOperations: DocumentedOperation[] = [
  ...PATHS.map(
    (path): DocumentedOperation => ({
      method: 'options',
      path,
      summary: `CORS preflight of ${path} for the configured Web UI origins (CODEC_CORS_ORIGINS)`,
      tag: 'codec',
      security: [],
      responses: { 204: null, 403: 'problem' },
    }),
  ),
  {
    method: 'get',
    path: '/codec/login',
    summary: 'The page where a browser signs in for the Web UI codec (HTML)',
    tag: 'codec',
    security: [],
    responses: { 200: z.string() },
    responseType: 'text/html',
  },
  {
    method: 'post',
    path: '/codec/session',
    summary: "Open the browser's codec session (an 8-hour HttpOnly cookie) with an API key (IT operators, admin); audited",
    tag: 'codec',
    description: `Roles: ${CODEC_ROLES.join(', ')} (admin always). Same origin only (no CORS).`,
    security: ['apiKey'],
    responses: {
      200: z.object({ username: z.string(), expiresAt: z.string() }),
      401: 'problem',
      403: 'problem',
      503: 'problem',
    },
  },
  {
    method: 'post',
    path: '/codec/logout',
    summary: "Close the browser's codec session",
    tag: 'codec',
    security: [],
    responses: { 204: null, 503: 'problem' },
  },
  codecCall('encode'),
  codecCall('decode'),
];

/**
 * POST /codec/encode and /codec/decode, where the Temporal Web UI (`codec.endpoint`) and the CLI
 * (`--codec-endpoint <PUBLIC_URL>/codec --codec-auth "Bearer <API key>"`) send payloads to be read or written.
 * Browsers may call it only from the configured Web UI origins. Decoding is for IT operators and admins, encoding for
 * admins only. Every call is audited: who, which namespace, how many payloads, which key IDs; never what they held.
 * Decode passes payloads that are not encrypted through, whatever PAYLOAD_ALLOW_CLEAR says: it is a viewer, and what
 * it answers goes to a person, not into a run.
 */
export function mountCodec(router: Router, deps: ApiDeps): void {
  const origins = new Set(deps.config.codecCorsOrigins ?? []);

  const cors = async (ctx: Context, next: Next) => {
    const origin = ctx.get('origin');
    if (origin) {
      ctx.vary('Origin');
      if (!origins.has(origin)) throw problems.forbidden(`the origin ${origin} may not call the codec endpoint (CODEC_CORS_ORIGINS)`);
      ctx.set({ 'Access-Control-Allow-Origin': origin, 'Access-Control-Allow-Credentials': 'true' });
    }
    await next();
  };

  router.options(PATHS, cors, (ctx) => {
    ctx.set({
      'Access-Control-Allow-Methods': 'POST, OPTIONS',
      'Access-Control-Allow-Headers': ALLOWED_HEADERS,
      'Access-Control-Max-Age': '600',
    });
    ctx.status = 204;
  });

  /** An API key (the CLI's --codec-auth), else the browser's codec session (the Web UI sends cookies, not keys). */
  async function codecActor(ctx: Context): Promise<Actor> {
    if (ctx.get('authorization')) return deps.authenticate(ctx);
    const token = ctx.cookies.get(SESSION_COOKIE);
    const actor = token ? await codecSessionActor(deps.db, token) : undefined;
    if (!actor) {
      throw new Problem(
        401,
        'unauthenticated',
        'Authentication required',
        'send "Authorization: Bearer <API key>", or sign in for the Web UI at /codec/login',
        {},
        { 'WWW-Authenticate': 'Bearer realm="labflow"' },
      );
    }
    return actor;
  }

  router.get('/codec/login', (ctx) => {
    ctx.type = 'text/html; charset=utf-8';
    ctx.set({ 'Content-Security-Policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'" });
    ctx.body = LOGIN_PAGE;
  });

  // Same-origin only (the login page): no CORS headers, so no other site can open a session in the browser.
  router.post('/codec/session', async (ctx) => {
    const actor = await deps.authenticate(ctx);
    requireRole(actor, CODEC_ROLES);
    const { token, expiresAt } = await openCodecSession(deps.db, actor.userId, SESSION_TTL_MS, ctx.state.apiKeyId as string | undefined);
    ctx.cookies.set(SESSION_COOKIE, token, {
      httpOnly: true,
      sameSite: 'strict',
      secure: ctx.secure,
      path: '/codec',
      expires: expiresAt,
      overwrite: true,
    });
    await appendAudit(deps.db, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'codec.session_opened',
      entityType: 'user',
      entityId: actor.userId,
      details: { expiresAt: expiresAt.toISOString() },
    });
    ctx.body = { username: actor.username, expiresAt: expiresAt.toISOString() };
  });

  router.post('/codec/logout', async (ctx) => {
    const token = ctx.cookies.get(SESSION_COOKIE);
    if (token) await closeCodecSession(deps.db, token);
    ctx.cookies.set(SESSION_COOKIE, null, { path: '/codec' });
    ctx.status = 204;
  });

  const handle = (direction: 'encode' | 'decode') => async (ctx: Context) => {
    const actor = await codecActor(ctx);
    requireRole(actor, direction === 'encode' ? ENCODE_ROLES : CODEC_ROLES);
    ctx.state.actor = actor.username;
    const codec = deps.payloadCodec;
    if (!codec) {
      throw new Problem(
        503,
        'payload-encryption-off',
        'Payload encryption is off',
        'no payload keys are configured, so there is nothing to encode or decode',
      );
    }
    const namespace = ctx.get('x-namespace') || deps.temporal.options.namespace;
    if (!NAMESPACE.test(namespace)) {
      throw problems.validation('X-Namespace is not a namespace name', [{ field: 'headers.x-namespace', detail: 'not a namespace name' }]);
    }
    const body = parseOrProblem(codecBody, (await readJsonBody(ctx, deps.config.bodyLimitBytes)) ?? {}, 'body');
    const payloads = body.payloads.map(fromJson);

    const audit = (keyIds: string[]) =>
      appendAudit(deps.db, {
        actorId: actor.userId,
        actor: actor.username,
        action: `codec.${direction}`,
        entityType: 'temporal-namespace',
        entityId: namespace,
        details: { payloads: payloads.length, keyIds },
      });

    if (direction === 'encode') {
      const encoded = await codec.encode(payloads);
      await audit([...new Set(encoded.map(keyIdOf).filter((id): id is string => id !== undefined))].sort());
      ctx.body = { payloads: encoded.map(toJson) };
      return;
    }
    let decoded: Payload[];
    try {
      decoded = await Promise.all(payloads.map(async (p) => (isEncrypted(p) ? (await codec.decode([p]))[0] : p)));
    } catch (err) {
      if (err instanceof PayloadDecryptionError) throw problems.unprocessable('undecodable-payload', err.message);
      throw err;
    }
    await audit([...new Set(payloads.map(keyIdOf).filter((id): id is string => id !== undefined))].sort());
    ctx.body = { payloads: decoded.map(toJson) };
  };
  router.post('/codec/encode', cors, handle('encode'));
  router.post('/codec/decode', cors, handle('decode'));
}

/** Signs the browser in for the Web UI's codec calls; the key is sent once, over fetch, and never stored. */
const LOGIN_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>labflow: decode payloads in the Temporal Web UI</title>
<style>body{font:15px system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem}input{width:100%;padding:.4rem}
button{margin-top:.8rem;padding:.4rem 1rem}#out{margin-top:1rem}</style></head>
<body><h1>Decode payloads in the Temporal Web UI</h1>
<p>Workflow payloads are encrypted. Sign in with your labflow API key (admin or IT operator) to let the Web UI
decode them in this browser for 8 hours. Every decode is recorded in the audit trail under your name.</p>
<form id="f"><label>API key <input id="k" type="password" autocomplete="off" required></label>
<button>Sign in</button></form><div id="out" role="status"></div>
<p>In the Web UI, the codec endpoint must have <em>Include cross-origin credentials</em> on, and the UI must be opened
under the same host name as this page (e.g. both on <code>localhost</code>).</p>
<script>
document.getElementById('f').addEventListener('submit', async (e) => {
  e.preventDefault();
  const out = document.getElementById('out');
  const res = await fetch('session', { method: 'POST', headers: { authorization: 'Bearer ' + document.getElementById('k').value } });
  const body = await res.json().catch(() => ({}));
  out.textContent = res.ok ? 'Signed in as ' + body.username + ' until ' + body.expiresAt + '.' : (body.detail || 'Not signed in.');
  document.getElementById('k').value = '';
});
</script></body></html>
`;
