import type { Knex } from 'knex';

/** An entry an instrument reported keeps the message it came in (the instrument's own message ID). */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`alter table analysis_entries add column message_id text check (message_id is null or length(message_id) <= 200)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`alter table analysis_entries drop column message_id`);
}
