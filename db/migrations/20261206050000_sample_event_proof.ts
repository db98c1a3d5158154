import type { Knex } from 'knex';

/**
 * A webhook delivery is the proof of the sample event the API signals for it: the API writes the event it sends and
 * the run it sends it to on the delivery's row, and the activity that records the event checks the row and marks it
 * recorded (once; its own retry finds its own mark) in the same transaction as the write.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table sample_webhook_events
      add column signalled_event jsonb,
      add column signalled_to text,
      add column recorded_at timestamptz,
      add column recorded_by text,
      add constraint sample_webhook_events_recorded check ((recorded_at is null) = (recorded_by is null)),
      add constraint sample_webhook_events_signalled check ((signalled_event is null) = (signalled_to is null));
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table sample_webhook_events
      drop constraint if exists sample_webhook_events_signalled,
      drop constraint if exists sample_webhook_events_recorded,
      drop column if exists recorded_by,
      drop column if exists recorded_at,
      drop column if exists signalled_to,
      drop column if exists signalled_event;
  `);
}
