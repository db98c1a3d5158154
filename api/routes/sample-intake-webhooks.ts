import { createHmac, timingSafeEqual } from 'node:crypto';
import type Router from '@koa/router';
import type { Context } from 'koa';
import { workflowIds } from '../../common/ids';
import { appendAudit } from '../../db/audit';
import { findSampleByExternal, registerSamples, sampleTypes, sourceOf, testCodes, type SampleRow } from '../../db/sample-intake';
import { openTask } from '../../db/tasks';
import type { ApiDeps } from '../deps';
import { Problem, problems } from '../problem';
import { parseOrProblem } from '../route';
import { deliverSampleEvent, webhookEvent } from '../sample-intake-runs';
import { webhookBody, type WebhookBody } from '../schemas/sample-intake';

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

/**
 * POST /api/v1/webhooks/:source — instruments, couriers and external LIMS. Not API-key authenticated: each request
 * is signed with HMAC-SHA256 over `timestamp + "." + raw body` with the source's secret. The sender's event ID is
 * the idempotency key; the event is recorded, answered 202, and then signalled to the sample's run.
 */
export function mountSampleWebhooks(router: Router, deps: ApiDeps): void {
  const { db, temporal, config, log } = deps;

  async function hold(source: string, body: WebhookBody, reason: string) {
    await db.transaction(async (trx) => {
      const [row] = await trx('sample_held_orders')
        .insert({ source, event_id: body.eventId, reason, payload: JSON.stringify(body) })
        .onConflict(['source', 'event_id'])
        .ignore()
        .returning('id');
      if (!row) return;
      await openTask(trx, {
        taskKey: `sample-held-order:${row.id}`,
        workflowId: `sample-held-order:${row.id}`,
        entityType: 'sample_order',
        entityId: `${source}:${body.sample.externalId}`,
        kind: 'sample.held_order',
        title: `Order ${body.sample.externalId} from ${source} is held: ${reason}`,
        assignee: { kind: 'role', role: 'lab_technician' },
      });
      await appendAudit(trx, {
        actor: `system:${source}`,
        action: 'sample.order_held',
        entityType: 'sample_order',
        entityId: `${source}:${body.sample.externalId}`,
        details: { eventId: body.eventId, reason },
      });
    });
  }

  /** Finds or registers the sample an event is about; null when it must be held for a person. */
  async function sampleFor(source: string, contactId: string | null, body: WebhookBody): Promise<SampleRow | null> {
    const known = await findSampleByExternal(db, source, body.sample.externalId);
    if (known) return known;
    const s = body.sample;
    if (!s.sampleType) {
      await hold(source, body, `no sample with external ID ${s.externalId} and no sample type to register one`);
      return null;
    }
    const [types, tests] = await Promise.all([sampleTypes(db), testCodes(db)]);
    const unknown = [
      ...(types.has(s.sampleType) ? [] : [`sample type ${s.sampleType}`]),
      ...(s.tests ?? []).filter((t) => tests.get(t)?.sample_type !== s.sampleType).map((t) => `test ${t}`),
    ];
    if (unknown.length) {
      await hold(source, body, `unknown ${unknown.join(', ')}`);
      return null;
    }
    try {
      await db.transaction((trx) =>
        registerSamples(
          trx,
          [
            {
              sampleType: s.sampleType!,
              priority: s.priority ?? 'routine',
              requestedTests: s.tests ?? [],
              externalId: s.externalId,
              barcode: s.barcode,
              patient: s.patient,
              collectedAt: s.collectedAt,
            },
          ],
          { source, submitterId: contactId, actor: `system:${source}`, actorId: null, workflowIdOf: workflowIds.sampleIntake },
        ),
      );
    } catch (err) {
      // The same sample registered by a concurrent delivery: use that one.
      if ((err as { code?: string }).code !== '23505') throw err;
    }
    return (await findSampleByExternal(db, source, s.externalId))!;
  }

  async function dispatch(source: string, contactId: string | null, body: WebhookBody): Promise<void> {
    const row = await sampleFor(source, contactId, body);
    if (row) {
      const type = (await sampleTypes(db)).get(row.sample_type)!;
      await deliverSampleEvent(db, temporal, config.taskQueue, row, type, webhookEvent(source, body));
    }
    await db('sample_webhook_events')
      .where({ source, event_id: body.eventId })
      .update({ applied_at: db.fn.now(), accession: row?.accession ?? null });
  }

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
    const body = parseOrProblem(webhookBody, parsed, 'body');
    if (body.sample.collectedAt && Date.parse(body.sample.collectedAt) > Date.now()) {
      throw problems.unprocessable('collection-in-future', 'the collection time is in the future', {
        errors: [{ field: 'body.sample.collectedAt', detail: 'in the future' }],
      });
    }
    ctx.state.actor = `source:${source.name}`;

    const [fresh] = await db('sample_webhook_events')
      .insert({ source: source.name, event_id: body.eventId, type: body.type, payload: JSON.stringify(body) })
      .onConflict(['source', 'event_id'])
      .ignore()
      .returning('applied_at');
    let replay = false;
    if (!fresh) {
      const seen = await db('sample_webhook_events')
        .where({ source: source.name, event_id: body.eventId })
        .first('applied_at', 'accession');
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
    dispatch(source.name, source.contact_user_id, body).catch((err) =>
      log.error({ err, source: source.name, eventId: body.eventId }, 'webhook event not applied'),
    );
  });
}
