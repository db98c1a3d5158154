import type { Knex } from 'knex';

/**
 * Bulk exports: who asked for which records (every CAPA of a year, every sample of a month) in which format, the
 * selection the run fixed, its progress, and the file it produced. A sample bundle holds PHI: it is answered only
 * to the person who asked, and each download is a PHI access event.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table bulk_exports (
      id uuid primary key,
      workflow_id text not null unique,
      kind text not null check (kind in ('capas', 'samples')),
      period text not null check (period ~ '^[0-9]{4}$' or period ~ '^[0-9]{4}-[0-9]{2}$'),
      format text not null check (format in ('pdf', 'csv', 'json')),
      state text not null default 'running' check (state in ('running', 'completed', 'failed')),
      requested_by_id uuid not null references users(id),
      requested_by text not null,
      requested_by_name text not null,
      requested_at timestamptz not null default now(),
      total integer not null default 0 check (total >= 0),
      done integer not null default 0 check (done >= 0),
      record_ids text[],
      file bytea,
      file_name text,
      media_type text,
      bytes integer,
      sha256 text,
      error text,
      finished_at timestamptz,
      check ((state = 'completed') = (file is not null))
    );
    create index bulk_exports_requester on bulk_exports (requested_by_id, requested_at desc);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop table bulk_exports');
}
