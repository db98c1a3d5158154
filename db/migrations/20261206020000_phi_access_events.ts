import type { Knex } from 'knex';

/**
 * Who read which patient's PHI (HIPAA 164.312(b)). Kept apart from audit_events: every read writes here, and the
 * audit chain assigns each event its place under one lock, so reads would queue behind each other and behind every
 * audited write; access events also have their own retention and are looked up by patient. Append-only like the
 * audit trail. No foreign key to patients: the log of a deleted patient must outlive the record.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table phi_access_events (
      id uuid primary key default gen_random_uuid(),
      occurred_at timestamptz not null default now(),
      user_id uuid not null references users(id),
      username text not null,
      record_kind text not null check (record_kind in
        ('patient', 'patient_list', 'note', 'note_list', 'summary', 'summary_job', 'summary_job_list')),
      -- The notes, summaries or summary jobs shown; for a list of patients, the patients are the rows below.
      record_ids text[] not null default '{}',
      outcome text not null check (outcome in ('read', 'denied')),
      method text not null check (method ~ '^[A-Z]{3,7}$'),
      -- The route pattern (/api/v1/patients/:id), never the URL: query values may hold names.
      route text not null,
      request_id text
    );

    -- One row per patient an event shows: a search answering twenty patients is one event in twenty patients' logs.
    create table phi_access_event_patients (
      patient_id uuid not null,
      event_id uuid not null references phi_access_events(id),
      occurred_at timestamptz not null,
      primary key (patient_id, occurred_at, event_id)
    );
    create index phi_access_events_user on phi_access_events (user_id, occurred_at);

    create function phi_access_refuse_change() returns trigger language plpgsql as $$
    begin
      raise exception '% is append-only: % refused', tg_table_name, tg_op using errcode = 'insufficient_privilege';
    end $$;
    create trigger phi_access_events_append_only before update or delete on phi_access_events
      for each row execute function phi_access_refuse_change();
    create trigger phi_access_events_no_truncate before truncate on phi_access_events
      for each statement execute function phi_access_refuse_change();
    create trigger phi_access_event_patients_append_only before update or delete on phi_access_event_patients
      for each row execute function phi_access_refuse_change();
    create trigger phi_access_event_patients_no_truncate before truncate on phi_access_event_patients
      for each statement execute function phi_access_refuse_change();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop table if exists phi_access_event_patients;
    drop table if exists phi_access_events;
    drop function if exists phi_access_refuse_change();
  `);
}
