import type Router from '@koa/router';
import type { Payload } from '@temporalio/common';
import type { Context, Next } from 'koa';
import { z } from 'zod';
import type { Role } from '../../common/roles';
import { appendAudit } from '../../db/audit';
import { keyIdOf, PayloadDecryptionError } from '../../platform/payload-codec';
import { requireRole } from '../auth';
import { readJsonBody } from '../body';
import type { ApiDeps } from '../deps';
import { Problem, problems } from '../problem';
import { parseOrProblem } from '../route';

/** Who may see decoded payloads (admin may call any route). */
export const CODEC_ROLES: readonly Role[] = ['it_operator'];

const PATHS = ['/codec/encode', '/codec/decode'];
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

/**
 * POST /codec/encode and /codec/decode, where the Temporal Web UI (`codec.endpoint`) and the CLI
 * (`--codec-endpoint <PUBLIC_URL>/codec --codec-auth "Bearer <API key>"`) send payloads to be read or written.
 * Browsers may call it only from the configured Web UI origins. Every decode is audited: who, which namespace, how
 * many payloads, which key IDs; never what they held.
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

  const handle = (direction: 'encode' | 'decode') => async (ctx: Context) => {
    const actor = await deps.authenticate(ctx);
    requireRole(actor, CODEC_ROLES);
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

    if (direction === 'encode') {
      ctx.body = { payloads: (await codec.encode(payloads)).map(toJson) };
      return;
    }
    let decoded: Payload[];
    try {
      decoded = await codec.decode(payloads);
    } catch (err) {
      if (err instanceof PayloadDecryptionError) throw problems.unprocessable('undecodable-payload', err.message);
      throw err;
    }
    const keyIds = [...new Set(payloads.map(keyIdOf).filter((id): id is string => id !== undefined))].sort();
    await appendAudit(deps.db, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'codec.decode',
      entityType: 'temporal-namespace',
      entityId: namespace,
      details: { payloads: payloads.length, keyIds },
    });
    ctx.body = { payloads: decoded.map(toJson) };
  };
  router.post('/codec/encode', cors, handle('encode'));
  router.post('/codec/decode', cors, handle('decode'));
}
