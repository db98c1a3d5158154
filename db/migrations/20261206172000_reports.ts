import type { Knex } from 'knex';
import { changePhiAccessKinds } from './phi-access-kinds';

/**
 * A sample's reports: one row per version (`report:<accession>:v<n>`), its content (PHI: the patient's
 * identification and results, kept here, never in a run's history), the hash the lab director signs, and once
 * released its PDF/A bytes with their SHA-256 and the release signature. A released version never changes and is
 * never deleted (a trigger refuses both, even for the owner until it disables it); a correction is a new version
 * that names the one it corrects and why. Reading a report is a PHI disclosure of its own kind.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table reports (
      id uuid primary key default gen_random_uuid(),
      workflow_id text not null unique,
      sample_id uuid not null references samples(id),
      accession text not null,
      version integer not null check (version > 0),
      state text not null default 'awaiting_release' check (state in ('awaiting_release', 'released')),
      corrects_report_id uuid references reports(id),
      correction_reason text check (correction_reason is null or length(correction_reason) between 1 and 2000),
      correction_requested_by uuid references users(id),
      content jsonb,
      content_hash text,
      analysis_ids uuid[] not null default '{}',
      pdf bytea,
      pdf_sha256 text,
      signature_id uuid,
      released_by uuid references users(id),
      released_at timestamptz,
      release_request_id text,
      created_at timestamptz not null default now(),
      unique (sample_id, version),
      unique (corrects_report_id),
      check ((version = 1) = (corrects_report_id is null)),
      check ((corrects_report_id is null) = (correction_reason is null)),
      check ((state = 'released') = (pdf is not null and pdf_sha256 is not null and signature_id is not null and released_at is not null))
    );
    create index reports_accession on reports (accession, version);

    create function reports_released_unchanged() returns trigger language plpgsql as $$
    begin
      if tg_op = 'DELETE' then
        raise exception 'reports are never deleted (report %)', old.workflow_id using errcode = '42501';
      end if;
      if old.state = 'released' then
        raise exception 'a released report never changes (report %): correct it with a new version', old.workflow_id
          using errcode = '42501';
      end if;
      return new;
    end $$;
    create trigger reports_released_unchanged before update or delete on reports
      for each row execute function reports_released_unchanged();

  `);
  await changePhiAccessKinds(knex, { add: ['report', 'report_list'] });
}

export async function down(knex: Knex): Promise<void> {
  await changePhiAccessKinds(knex, { remove: ['report', 'report_list'] });
  await knex.raw(`
    drop table if exists reports;
    drop function if exists reports_released_unchanged();
  `);
}
