import type { Knex } from 'knex';

/**
 * A page of calls in one state (`GET /critical-calls?state=notified`, every call ever confirmed) reads the index in
 * its order instead of sorting the table; the open calls keep their partial index.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('create index critical_calls_by_state on critical_calls (state, opened_at, id)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop index critical_calls_by_state');
}
