import type { Knex } from 'knex';

/**
 * Credentials people own: signing passwords they set themselves through a one-time enrolment token (kept as a
 * hash), the hashes of their earlier passwords (no reuse), named API keys with an expiry, and the failed API key
 * attempts that alert IT and QA.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table users add column password_changed_at timestamptz;
    update users set password_changed_at = created_at where password_hash is not null;

    create table signing_password_history (
      id uuid primary key default gen_random_uuid(),
      user_id uuid not null references users(id) on delete cascade,
      password_hash text not null,
      retired_at timestamptz not null default now()
    );
    create index signing_password_history_user on signing_password_history (user_id, retired_at desc);

    create table enrolment_tokens (
      id uuid primary key default gen_random_uuid(),
      user_id uuid not null references users(id) on delete cascade,
      token_hash text not null unique check (token_hash ~ '^[0-9a-f]{64}$'),
      issued_by text not null,
      created_at timestamptz not null default now(),
      expires_at timestamptz not null,
      used_at timestamptz,
      superseded_at timestamptz,
      check (expires_at > created_at)
    );
    create index enrolment_tokens_user on enrolment_tokens (user_id) where used_at is null and superseded_at is null;

    alter table api_keys add column expires_at timestamptz;
    alter table api_keys add column replaced_by uuid references api_keys(id);
    alter table api_keys add constraint api_keys_label_length check (char_length(label) <= 80);
    create index api_keys_user on api_keys (user_id, created_at);

    create table api_key_failures (
      id bigint generated always as identity primary key,
      at timestamptz not null default now(),
      client_ip text not null,
      prefix text
    );
    create index api_key_failures_ip on api_key_failures (client_ip, at);
    create index api_key_failures_prefix on api_key_failures (prefix, at) where prefix is not null;

    -- An email whose body holds a secret (an enrolment token) keeps it only until the relay has accepted it.
    alter table email_outbox add column scrub_after_send boolean not null default false;

    -- A codec session ends with the key it was opened with.
    alter table codec_sessions add column api_key_id uuid references api_keys(id) on delete cascade;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table codec_sessions drop column if exists api_key_id;
    alter table email_outbox drop column if exists scrub_after_send;
    drop table if exists api_key_failures;
    drop index if exists api_keys_user;
    alter table api_keys drop constraint if exists api_keys_label_length;
    alter table api_keys drop column if exists replaced_by;
    alter table api_keys drop column if exists expires_at;
    drop table if exists enrolment_tokens, signing_password_history;
    alter table users drop column if exists password_changed_at;
  `);
}
