import type { Knex } from 'knex';

/**
 * Browser sessions for the codec endpoint: the Temporal Web UI calls /codec/decode with the browser's cookies
 * (codec "include credentials"), never with a labflow API key, so an operator signs in once at /codec/login.
 * Only a hash of the session token is kept.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table codec_sessions (
      token_hash text primary key,
      user_id uuid not null references users(id) on delete cascade,
      created_at timestamptz not null default now(),
      expires_at timestamptz not null
    );
    create index codec_sessions_expiry on codec_sessions (expires_at);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop table if exists codec_sessions');
}
