import type { Db } from './knex';
import { findSampleByExternal, registerSamples, type NewSample, type SampleRow } from './sample-intake';
import { workflowIds } from '../common/ids';

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

/** Registers a sample an external system announced; one registered meanwhile by a concurrent delivery is used instead. */
export async function registerExternalSample(
  db: Db,
  source: { name: string; contactUserId: string | null },
  sample: NewSample & { externalId: string },
): Promise<SampleRow> {
  try {
    await db.transaction((trx) =>
      registerSamples(trx, [sample], {
        source: source.name,
        submitterId: source.contactUserId,
        actor: `system:${source.name}`,
        actorId: null,
        workflowIdOf: workflowIds.sampleIntake,
      }),
    );
  } catch (err) {
    if ((err as { code?: string }).code !== '23505') throw err;
  }
  const row = await findSampleByExternal(db, source.name, sample.externalId);
  if (!row) throw new Error(`sample ${sample.externalId} from ${source.name} was not registered`);
  return row;
}
