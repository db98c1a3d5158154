import { createHmac, timingSafeEqual } from 'node:crypto';
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { sourceOf } from '../../db/sample-intake';
import { recordWebhookEvent, webhookEventOf } from '../../db/sample-webhooks';
import type { ApiDeps } from '../deps';
import type { DocumentedOperation } from '../openapi';
import { Problem, problems } from '../problem';
import { parseOrProblem } from '../route';
import { applyWebhookEvent } from '../services/sample-intake';
import { webhookBody } from '../schemas/sample-intake';
import { loggableError } from '../hardening/safe-error';
import { applyResultReport, prepareResultReport, resultReportBody, type ResultReport } from '../inbound/result-reports';

/** A signed request may be this far from the server's clock, either way. */
export const WEBHOOK_TOLERANCE_MS = 5 * 60_000;
export const TIMESTAMP_HEADER = 'x-labflow-timestamp';
export const SIGNATURE_HEADER = 'x-labflow-signature';

export function webhookSignature(secret: string, timestamp: string, rawBody: string | Buffer): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(rawBody).digest('hex');
}

const refused = (type: string, detail: string) => new Problem(401, type, 'Webhook not accepted', detail);

async function readRaw(ctx: Context, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw problems.tooLarge(limit);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The signed webhook, for the OpenAPI document. */
export const sampleWebhookOperations: DocumentedOperation[] = [
  {
    method: 'post',
    path: '/api/v1/webhooks/{source}',
    summary: 'An event from an instrument, courier or external LIMS (a sample event or a reported result), signed with HMAC-SHA256 by its source',
    tag: 'sample intake',
    description:
      "Not API-key authenticated: the source's HMAC signature (X-Labflow-Signature over X-Labflow-Timestamp and the raw body). " +
      "The sender's eventId is the idempotency key: 202 when recorded, 200 `duplicate` when seen before. " +
      'Each event type goes to its process: sample events (`order`, `sample.shipped`, `sample.received`, `result.ready`) to the sample\'s run, ' +
      "`result.reported` (an instrument's result for a routed test) to the test's analysis run, entered while the sender waits (409 when the analysis refuses it, 422 when the value does not fit the test).",
    security: ['webhookSignature'],
    parameters: [
      { name: 'source', in: 'path', required: true, schema: { type: 'string' } },
      {
        name: 'X-Labflow-Timestamp',
        in: 'header',
        required: true,
        description: 'Unix time in seconds, within 5 minutes of the server clock; signed with the body',
        schema: { type: 'string', pattern: '^\\d{1,12}$' },
      },
    ],
    body: z.union([webhookBody, resultReportBody]),
    responses: {
      200: z.object({ eventId: z.string(), status: z.literal('duplicate'), applied: z.boolean(), accession: z.string().nullable() }),
      202: z.object({
        eventId: z.string(),
        status: z.literal('accepted'),
        /** For `result.reported`: the analysis's state once the instrument path submitted it and its rule set judged it. */
        analysisState: z.string().optional(),
      }),
      400: 'problem',
      401: 'problem',
      413: 'problem',
      404: 'problem',
      409: 'problem',
      422: 'problem',
      503: 'problem',
    },
  },
];

/**
 * POST /api/v1/webhooks/:source — instruments, couriers and external LIMS. Not API-key authenticated: each request
 * is signed with HMAC-SHA256 over `timestamp + "." + raw body` with the source's secret. The sender's event ID is
 * the idempotency key; the event is recorded, answered 202, and then signalled to the sample's run.
 */
export function mountSampleWebhooks(router: Router, deps: ApiDeps): void {
  const { db, config, log } = deps;

  router.post('/api/v1/webhooks/:source', async (ctx) => {
    const raw = await readRaw(ctx, config.bodyLimitBytes);
    const timestamp = ctx.get(TIMESTAMP_HEADER);
    const offered = ctx.get(SIGNATURE_HEADER).replace(/^sha256=/, '');
    const seconds = Number(timestamp);
    if (!/^\d{1,12}$/.test(timestamp)) throw refused('webhook-timestamp-missing', `send the Unix time in seconds as ${TIMESTAMP_HEADER}`);
    if (Math.abs(Date.now() - seconds * 1000) > WEBHOOK_TOLERANCE_MS) {
      throw refused('webhook-timestamp-out-of-range', 'the timestamp is more than 5 minutes away from the server clock');
    }
    const source = await sourceOf(db, ctx.params.source);
    const expected = Buffer.from(webhookSignature(source?.secret ?? 'no such source', timestamp, raw), 'hex');
    const given = /^[0-9a-f]{64}$/i.test(offered) ? Buffer.from(offered, 'hex') : Buffer.alloc(32);
    // An unknown source is answered exactly like a bad signature.
    if (!timingSafeEqual(expected, given) || !source) throw refused('webhook-signature-invalid', 'the signature does not match');

    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      throw problems.malformedJson((err as Error).message);
    }
    ctx.state.actor = `source:${source.name}`;
    if ((parsed as { type?: unknown } | null)?.type === 'result.reported') {
      await receiveResultReport(ctx, deps, source, parseOrProblem(resultReportBody, parsed, 'body'));
      return;
    }
    const body = parseOrProblem(webhookBody, parsed, 'body');
    if (body.sample.collectedAt && Date.parse(body.sample.collectedAt) > Date.now()) {
      throw problems.unprocessable('collection-in-future', 'the collection time is in the future', {
        errors: [{ field: 'body.sample.collectedAt', detail: 'in the future' }],
      });
    }
    const fresh = await recordWebhookEvent(db, source.name, { eventId: body.eventId, type: body.type, payload: body });
    let replay = false;
    if (!fresh) {
      const seen = await webhookEventOf(db, source.name, body.eventId);
      ctx.status = 200;
      ctx.body = { eventId: body.eventId, status: 'duplicate', applied: seen?.applied_at !== null, accession: seen?.accession ?? null };
      // Recorded earlier but not yet applied (the signal failed): this delivery applies it; the run de-duplicates.
      replay = seen?.applied_at === null;
      if (!replay) return;
    } else {
      ctx.status = 202;
      ctx.body = { eventId: body.eventId, status: 'accepted' };
    }
    // Answered first; the run is told right after. A failure leaves applied_at empty, and the sender's retry applies it.
    applyWebhookEvent(deps, source.name, source.contact_user_id, body).catch((err) =>
      log.error({ err: loggableError(err), source: source.name, eventId: body.eventId }, 'webhook event not applied'),
    );
  });
}

/**
 * A result an instrument reports is entered while the sender waits: it learns at once whether the analysis took it
 * (202 with the analysis's state), and a refusal (a closed analysis, a unit the test does not use) is its to fix. A
 * report recorded earlier but not entered (Temporal was unreachable) is entered by the sender's retry.
 */
async function receiveResultReport(
  ctx: Context,
  deps: ApiDeps,
  source: { name: string; contact_user_id: string | null },
  body: ResultReport,
): Promise<void> {
  const { db } = deps;
  const seen = await webhookEventOf(db, source.name, body.eventId);
  if (seen?.applied_at) {
    ctx.status = 200;
    ctx.body = { eventId: body.eventId, status: 'duplicate', applied: true, accession: seen.accession };
    return;
  }
  const prepared = await prepareResultReport(deps, source, body);
  if (!seen) await recordWebhookEvent(db, source.name, { eventId: body.eventId, type: body.type, payload: body });
  const analysisState = await applyResultReport(deps, source.name, body, prepared);
  ctx.status = 202;
  ctx.body = { eventId: body.eventId, status: 'accepted', analysisState };
}
