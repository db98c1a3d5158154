import type { Knex } from 'knex';

/**
 * The equipment register (ISO/IEC 17025 6.4.13): each instrument's identity, serial, software and firmware
 * versions, location and state; its calibration certificates (results, validity, the next due date, who prepared
 * and who reviewed and signed them); and an append-only history of everything else that happened to it (QC, defects
 * and damage, maintenance and repair, verification before service, retirement). Calibration reminders are kept
 * once per certificate and lead time, so none is sent twice; maintenance plans carry their due dates. A result entry
 * names whether it was a QC run, which an unusable instrument may still perform.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table instruments (
      id uuid primary key default gen_random_uuid(),
      code text not null unique check (code ~ '^[A-Z0-9][A-Z0-9_-]{1,63}$'),
      workflow_id text not null unique,
      name text not null,
      manufacturer text not null,
      model text not null,
      serial_number text not null,
      software_version text,
      firmware_version text,
      location text not null,
      state text not null default 'commissioning'
        check (state in ('commissioning', 'in_service', 'out_of_service', 'retired')),
      reasons text[] not null default '{}'
        check (reasons <@ array['calibration_expired', 'qc_failed', 'maintenance', 'defect', 'validation']::text[]),
      current_certificate_id uuid,
      calibration_valid_to timestamptz,
      reminder_before text[] not null,
      registered_by uuid not null references users(id),
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      check (state <> 'in_service' or reasons = '{}')
    );

    create table instrument_calibrations (
      id uuid primary key default gen_random_uuid(),
      instrument_id uuid not null references instruments(id),
      certificate_number text not null,
      valid_from timestamptz not null,
      valid_to timestamptz not null,
      document_hash text not null check (document_hash ~ '^[0-9a-f]{64}$'),
      results text not null,
      prepared_by uuid not null references users(id),
      reviewed_by uuid not null references users(id),
      signature_id uuid not null,
      superseded_at timestamptz,
      idempotency_key text not null unique,
      recorded_at timestamptz not null default now(),
      check (valid_to > valid_from),
      check (prepared_by <> reviewed_by)
    );
    create index instrument_calibrations_instrument on instrument_calibrations (instrument_id, recorded_at);
    alter table instruments add foreign key (current_certificate_id) references instrument_calibrations(id);
    create index instruments_calibration_due on instruments (calibration_valid_to, id) where state <> 'retired';

    create table instrument_events (
      id uuid primary key default gen_random_uuid(),
      instrument_id uuid not null references instruments(id),
      kind text not null check (kind in ('qc', 'defect', 'maintenance_started', 'maintenance_finished',
        'maintenance_planned', 'returned_to_service', 'retired', 'calibration_expired')),
      passed boolean,
      actor_id uuid references users(id),
      details jsonb not null default '{}',
      idempotency_key text not null unique,
      occurred_at timestamptz not null default now(),
      check ((kind = 'qc') = (passed is not null))
    );
    create index instrument_events_instrument on instrument_events (instrument_id, occurred_at);
    create trigger instrument_events_append_only before update or delete on instrument_events
      for each row execute function append_only_refuse_change();
    create trigger instrument_events_no_truncate before truncate on instrument_events
      for each statement execute function append_only_refuse_change();

    create table instrument_maintenance_plans (
      id uuid primary key default gen_random_uuid(),
      instrument_id uuid not null references instruments(id),
      description text not null,
      due_at timestamptz not null,
      notified_at timestamptz,
      done_at timestamptz,
      idempotency_key text not null unique,
      created_at timestamptz not null default now()
    );
    create index instrument_maintenance_plans_due on instrument_maintenance_plans (instrument_id, due_at);

    create table instrument_calibration_reminders (
      certificate_id uuid not null references instrument_calibrations(id),
      lead_time text not null,
      sent_at timestamptz not null default now(),
      primary key (certificate_id, lead_time)
    );

    alter table analysis_entries add column qc_run boolean not null default false;
    create index analysis_entries_instrument on analysis_entries (instrument, applied_at) where instrument is not null;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop index if exists analysis_entries_instrument;
    alter table analysis_entries drop column if exists qc_run;
    alter table instruments drop constraint if exists instruments_current_certificate_id_fkey;
    drop table if exists instrument_calibration_reminders, instrument_maintenance_plans, instrument_events,
      instrument_calibrations, instruments cascade;
  `);
}
