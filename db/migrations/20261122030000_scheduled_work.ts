import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    -- Every backup attempt, good or not; only 'verified' rows count toward retention.
    create table backups (
      id uuid primary key,
      workflow_id text not null,
      trigger text not null check (trigger in ('scheduled', 'manual')),
      requested_by text,
      state text not null default 'running' check (state in ('running', 'verified', 'failed', 'expired')),
      failure text,
      taken_at timestamptz not null,
      started_at timestamptz not null default now(),
      finished_at timestamptz,
      duration_ms integer,
      database_name text not null,
      server_version text,
      pg_dump_version text,
      compression integer not null,
      dump_path text,
      dump_bytes bigint,
      dump_sha256 text,
      globals_path text,
      globals_bytes bigint,
      globals_sha256 text,
      toc_entries integer,
      size_ratio double precision,
      encrypted boolean not null default false,
      key_fingerprint text,
      stored_sha256 text,
      globals_stored_sha256 text,
      offsite_path text,
      offsite_globals_path text,
      offsite_verified_at timestamptz,
      verified_at timestamptz,
      tier text check (tier in ('daily', 'weekly', 'monthly')),
      legal_hold boolean not null default false,
      expired_at timestamptz
    );
    create index backups_state_taken on backups (state, taken_at desc);

    create table restore_drills (
      id uuid primary key,
      backup_id uuid not null references backups(id),
      workflow_id text not null,
      started_at timestamptz not null default now(),
      restore_ms integer,
      row_counts jsonb not null default '{}',
      audit_chain_ok boolean,
      ok boolean not null,
      failure text
    );

    -- One reminder per task and period, one escalation per task.
    create table task_reminders (
      task_id uuid not null references tasks(id) on delete cascade,
      period text not null,
      kind text not null check (kind in ('reminder', 'escalation')),
      created_at timestamptz not null default now(),
      primary key (task_id, kind, period)
    );

    create table user_preferences (
      user_id uuid primary key references users(id) on delete cascade,
      time_zone text,
      digest boolean not null default true,
      updated_at timestamptz not null default now()
    );

    -- The last health canary that went through Temporal, a worker and Postgres.
    create table health_canary (
      id integer primary key check (id = 1),
      workflow_id text not null,
      started_at timestamptz not null,
      completed_at timestamptz not null default now()
    );
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop table if exists health_canary, user_preferences, task_reminders, restore_drills, backups cascade');
}
