import type { Knex } from 'knex';

/**
 * Patient records that keep their history:
 * - every version of a SOAP note (soap_note_versions; the text is PHI and lives only here and in soap_notes);
 * - care-team additions an admin asked for, pending until a clinician of the team confirms them, and the way each
 *   member came onto the team (by a clinician, confirmed, or break-glass with a reason);
 * - retention: a rule per record type, the patient's retirement (kept, read-only, until its retention ends) and a
 *   legal hold that blocks retirement and purge.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    -- One row per version of a note, the first included. A note deleted later keeps its versions; they go with the
    -- patient only (a purge after retention).
    create table soap_note_versions (
      note_id uuid not null,
      version integer not null check (version >= 1),
      patient_id uuid not null references patients(id) on delete cascade,
      subjective text not null,
      objective text not null,
      assessment text not null,
      plan text not null,
      note_time timestamptz not null,
      content_hash text not null,
      recorded_by uuid not null references users(id),
      recorded_at timestamptz not null default now(),
      -- The version that deleted the note (its text is the last text the note had).
      deleted boolean not null default false,
      primary key (note_id, version)
    );
    create index soap_note_versions_patient on soap_note_versions (patient_id);
    -- A version is never changed, and goes only with its patient (the purge after retention, by cascade: the
    -- patient row is already gone when the cascade deletes its versions). The owner too must disable this first.
    create function soap_note_versions_guard() returns trigger language plpgsql as $$
    begin
      if tg_op = 'DELETE' and not exists (select 1 from patients where id = old.patient_id) then
        return old;
      end if;
      raise exception 'note versions are kept: % refused', tg_op using errcode = 'insufficient_privilege';
    end $$;
    create trigger soap_note_versions_kept before update or delete on soap_note_versions
      for each row execute function soap_note_versions_guard();
    create trigger soap_note_versions_no_truncate before truncate on soap_note_versions
      for each statement execute function soap_note_versions_guard();
    -- Reading a note's versions is a disclosure of its own kind in the PHI access log.
    alter table phi_access_events drop constraint phi_access_events_record_kind_check;
    alter table phi_access_events add constraint phi_access_events_record_kind_check check (record_kind in
      ('patient', 'patient_list', 'note', 'note_list', 'note_versions', 'summary', 'summary_job', 'summary_job_list'));
    insert into soap_note_versions (note_id, version, patient_id, subjective, objective, assessment, plan, note_time,
                                    content_hash, recorded_by, recorded_at)
      select id, version, patient_id, subjective, objective, assessment, plan, note_time, content_hash, author_id, updated_at
        from soap_notes;

    alter table patient_clinicians
      add column access text not null default 'clinician' check (access in ('clinician', 'confirmed', 'break_glass')),
      add column confirmed_by uuid references users(id);

    -- An admin's request to add a clinician to a care team; a clinician of that team confirms it (or it is withdrawn).
    create table care_team_requests (
      id uuid primary key default gen_random_uuid(),
      patient_id uuid not null references patients(id) on delete cascade,
      user_id uuid not null references users(id),
      requested_by uuid not null references users(id),
      requested_at timestamptz not null default now(),
      state text not null default 'pending' check (state in ('pending', 'confirmed', 'withdrawn')),
      decided_by uuid references users(id),
      decided_at timestamptz,
      check ((state = 'pending') = (decided_at is null))
    );
    create unique index care_team_requests_pending on care_team_requests (patient_id, user_id) where state = 'pending';

    -- Break-glass additions: who, whom, why. The reason may name clinical circumstances, so it stays in Postgres.
    create table care_team_break_glass (
      id uuid primary key default gen_random_uuid(),
      patient_id uuid not null references patients(id) on delete cascade,
      user_id uuid not null references users(id),
      added_by uuid not null references users(id),
      reason text not null check (length(reason) between 10 and 2000),
      at timestamptz not null default now()
    );
    create index care_team_break_glass_patient on care_team_break_glass (patient_id, at);

    -- How long each kind of record is kept after the event named in basis.
    create table retention_rules (
      record_type text primary key,
      keep_years integer not null check (keep_years between 1 and 100),
      basis text not null
    );
    insert into retention_rules (record_type, keep_years, basis) values
      ('signed_summary', 10, 'years after the summary was signed'),
      ('soap_note', 10, 'years after the note''s last version');

    alter table patients
      add column retired_at timestamptz,
      add column retired_by uuid references users(id),
      add column retain_until timestamptz,
      add column legal_hold boolean not null default false,
      add column legal_hold_reason text,
      add column legal_hold_by uuid references users(id),
      add column legal_hold_at timestamptz,
      add check ((retired_at is null) = (retain_until is null)),
      add check (legal_hold = (legal_hold_reason is not null));
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table patients drop column retired_at, drop column retired_by, drop column retain_until, drop column legal_hold,
      drop column legal_hold_reason, drop column legal_hold_by, drop column legal_hold_at;
    alter table phi_access_events drop constraint phi_access_events_record_kind_check;
    alter table phi_access_events add constraint phi_access_events_record_kind_check check (record_kind in
      ('patient', 'patient_list', 'note', 'note_list', 'summary', 'summary_job', 'summary_job_list'));
    drop table if exists retention_rules, care_team_break_glass, care_team_requests, soap_note_versions;
    drop function if exists soap_note_versions_guard();
    alter table patient_clinicians drop column access, drop column confirmed_by;
  `);
}
