import type { Knex } from 'knex';
import { canonicalJson } from '../common/capa-hash';
import { workflowIds } from '../common/ids';
import type { SampleEvent } from '../common/sample-intake';
import type { Db } from './knex';
import { findSampleByExternal, noteUnresolvedProvider, registerSamples, type NewSample, type SampleRow } from './sample-intake';

/** Webhook deliveries, recorded by the sender's event ID so that a redelivery is applied once. */

/** Records a delivery; false when this source already delivered this event. */
export async function recordWebhookEvent(
  db: Db,
  source: string,
  event: { eventId: string; type: string; payload: unknown },
): Promise<boolean> {
  const [fresh] = await db('sample_webhook_events')
    .insert({ source, event_id: event.eventId, type: event.type, payload: JSON.stringify(event.payload) })
    .onConflict(['source', 'event_id'])
    .ignore()
    .returning('applied_at');
  return fresh !== undefined;
}

/** An earlier delivery of the event: whether it was applied, and to which sample. */
export async function webhookEventOf(
  db: Db,
  source: string,
  eventId: string,
): Promise<{ applied_at: Date | null; accession: string | null } | undefined> {
  return db('sample_webhook_events').where({ source, event_id: eventId }).first('applied_at', 'accession');
}

export async function markWebhookEventApplied(db: Db, source: string, eventId: string, accession: string | null): Promise<void> {
  await db('sample_webhook_events').where({ source, event_id: eventId }).update({ applied_at: db.fn.now(), accession });
}

/**
 * Registers a sample an external system announced; one registered meanwhile by a concurrent delivery is used instead.
 * An ordering provider the order named who is not an active clinician is noted with the registration (audit, task).
 */
export async function registerExternalSample(
  db: Db,
  source: { name: string; contactUserId: string | null },
  sample: NewSample & { externalId: string },
  unresolvedProvider?: { username: string; refusal: 'unknown' | 'not_clinician' },
): Promise<SampleRow> {
  const actor = `system:${source.name}`;
  try {
    await db.transaction(async (trx) => {
      const [registered] = await registerSamples(trx, [sample], {
        source: source.name,
        submitterId: source.contactUserId,
        actor,
        actorId: null,
        workflowIdOf: workflowIds.sampleIntake,
      });
      if (unresolvedProvider) {
        await noteUnresolvedProvider(trx, registered, { ...unresolvedProvider, source: source.name }, { actor, actorId: null });
      }
    });
  } catch (err) {
    if ((err as { code?: string }).code !== '23505') throw err;
  }
  const row = await findSampleByExternal(db, source.name, sample.externalId);
  if (!row) throw new Error(`sample ${sample.externalId} from ${source.name} was not registered`);
  return row;
}

/**
 * Writes on a delivery's row the event the API signals for it and the run it goes to, once: a later attempt (the
 * sender's retry of a delivery not yet applied, a held order released) signals the event written first, so the run
 * hears one event per delivery and the row keeps bearing it out. Answers the event to signal.
 */
export async function signalledEventOf(
  db: Db,
  workflowId: string,
  event: SampleEvent & { delivery: { source: string; eventId: string } },
): Promise<SampleEvent> {
  const { source, eventId } = event.delivery;
  const [written] = await db('sample_webhook_events')
    .where({ source, event_id: eventId })
    .whereNull('signalled_event')
    .update({ signalled_event: JSON.stringify(event), signalled_to: workflowId })
    .returning('signalled_event');
  if (written) return event;
  const row = await db('sample_webhook_events').where({ source, event_id: eventId }).first('signalled_event');
  if (!row) throw new Error(`no webhook delivery ${source}/${eventId} to signal`);
  return row.signalled_event as SampleEvent;
}

/** Why a delivery does not bear out the event a run was sent. */
export type DeliveryRefusal = 'missing' | 'unknown' | 'other_run' | 'other_arguments' | 'consumed';

const isText = (value: unknown): value is string => typeof value === 'string' && value.length > 0 && value.length <= 300;

/**
 * Checks, inside the transaction that records a machine event, that the webhook delivery the event names holds
 * exactly this event for this run, and marks the delivery recorded by this activity execution (its own retry finds
 * its own mark; any other recording is refused). Null when the delivery bears the event out.
 */
export async function claimDelivery(
  trx: Knex.Transaction,
  claim: { event: SampleEvent; workflowId: string; recordedBy: string },
): Promise<DeliveryRefusal | null> {
  const delivery = (claim.event as { delivery?: { source?: unknown; eventId?: unknown } }).delivery;
  if (!delivery || !isText(delivery.source) || !isText(delivery.eventId)) return 'missing';
  const row = await trx('sample_webhook_events')
    .where({ source: delivery.source, event_id: delivery.eventId })
    .forNoKeyUpdate()
    .first('signalled_event', 'signalled_to', 'recorded_by');
  if (!row?.signalled_event) return 'unknown';
  if (row.signalled_to !== claim.workflowId) return 'other_run';
  if (canonicalJson(row.signalled_event) !== canonicalJson(claim.event)) return 'other_arguments';
  if (row.recorded_by && row.recorded_by !== claim.recordedBy) return 'consumed';
  if (!row.recorded_by) {
    await trx('sample_webhook_events')
      .where({ source: delivery.source, event_id: delivery.eventId })
      .update({ recorded_at: trx.fn.now(), recorded_by: claim.recordedBy });
  }
  return null;
}
