import type { Knex } from 'knex';

/**
 * The API's rate-limit counters, shared by every API process (rate-limiter-flexible's PostgreSQL store, in the
 * shape it expects: `expire` in epoch milliseconds). Unlogged: counters are worth nothing after a crash, and
 * skipping the WAL keeps the write each request makes cheap.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create unlogged table rate_limits (
      key varchar(255) primary key,
      points integer not null default 0,
      expire bigint
    );
    create index rate_limits_expire on rate_limits (expire);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop table rate_limits');
}
