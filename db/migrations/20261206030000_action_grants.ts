import type { Knex } from 'knex';

/**
 * Single-use grants: the API writes one after authenticating a caller for one action on one run (and, for a
 * signature, after re-verifying the password); the activity that records the action consumes it in the same
 * transaction as the write. The ID travels through Temporal, so it is random and the table is its only meaning.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table action_grants (
      id text primary key,
      user_id uuid not null references users(id),
      workflow_id text not null,
      action text not null,
      args_hash text not null check (args_hash ~ '^[0-9a-f]{64}$'),
      signature_meaning text,
      signature_content_hash text,
      password_verified_at timestamptz,
      created_at timestamptz not null default now(),
      expires_at timestamptz not null,
      consumed_at timestamptz,
      consumed_by text,
      check (expires_at > created_at),
      check ((signature_meaning is null) = (password_verified_at is null)),
      check ((consumed_at is null) = (consumed_by is null))
    );
    create index action_grants_expiry on action_grants (expires_at) where consumed_at is null;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop table if exists action_grants');
}
