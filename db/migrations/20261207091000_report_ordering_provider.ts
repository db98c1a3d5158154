import type { Knex } from 'knex';

/**
 * A released report version records the ordering provider it was delivered to: the sample's provider at the moment
 * of release (null when the sample had none). They keep reading that version after the sample's provider is changed.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`alter table reports add column ordering_provider_id uuid references users(id)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`alter table reports drop column ordering_provider_id`);
}
