import type { Knex } from 'knex';

/** Sample intake and accessioning: samples, their custody trail, storage, routing, webhooks, batches, CAPA hook. */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    -- Accession numbers come from one sequence: two intakes racing can never get the same number.
    create sequence sample_accession_seq;

    -- Written acceptance criteria per sample type (ISO 15189 5.4.6 / CLIA 493.1242).
    create table sample_types (
      code text primary key check (code ~ '^[A-Z0-9_-]{1,32}$'),
      name text not null,
      containers text[] not null,
      preservatives text[] not null,
      min_volume_ml numeric not null check (min_volume_ml >= 0),
      temperature_classes text[] not null,
      reject_hemolyzed boolean not null default true,
      reject_clotted boolean not null default true,
      stability jsonb not null,
      active boolean not null default true
    );

    create table test_codes (
      code text primary key check (code ~ '^[A-Z0-9_-]{1,32}$'),
      name text not null,
      sample_type text not null references sample_types(code),
      work_queue text not null
    );

    -- Senders of webhooks (instruments, couriers, external LIMS), each with its own HMAC secret.
    create table sample_sources (
      name text primary key check (name ~ '^[a-z0-9_-]{2,40}$'),
      secret text not null,
      contact_user_id uuid references users(id),
      created_at timestamptz not null default now()
    );

    create table sample_batches (
      id uuid primary key default gen_random_uuid(),
      created_by uuid references users(id),
      source text,
      size integer not null check (size > 0),
      workflow_id text not null,
      created_at timestamptz not null default now()
    );

    create table samples (
      id uuid primary key default gen_random_uuid(),
      accession text not null unique,
      parent_id uuid references samples(id),
      source text not null default 'api',
      external_id text,
      barcode text,
      batch_id uuid references sample_batches(id),
      sample_type text not null references sample_types(code),
      priority text not null default 'routine' check (priority in ('routine', 'stat')),
      requested_tests text[] not null default '{}',
      rejected_tests text[] not null default '{}',
      has_order boolean not null default true,
      -- The requisition's patient identifiers (PHI): kept here, never in a run's history or search attributes.
      patient_name text,
      patient_dob date,
      patient_mrn text,
      submitter_id uuid references users(id),
      collected_at timestamptz,
      state text not null default 'expected' check (state in ('expected', 'in_transit', 'received', 'inspected',
        'accepted', 'accepted_with_deviation', 'rejected', 'aliquoted', 'stored', 'routed', 'cancelled', 'completed')),
      workflow_id text,
      stage text,
      due_at timestamptz,
      overdue boolean not null default false,
      received_at timestamptz,
      received_by text,
      received_location text,
      volume_ml numeric,
      inspection jsonb,
      -- Batch intake of specimens in hand: receipt and inspection findings the run applies at its start.
      arrival jsonb,
      deviation_comment text,
      rejection_code text,
      rejection_condition text,
      disposition text,
      cancel_reason text,
      registered_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      check (collected_at is null or received_at is null or collected_at <= received_at)
    );
    -- Barcodes and external IDs are unique per source: the same tube scanned twice is the same sample.
    create unique index samples_source_external on samples (source, external_id) where external_id is not null;
    create unique index samples_source_barcode on samples (source, barcode) where barcode is not null;
    create index samples_state on samples (state, sample_type);
    create index samples_batch on samples (batch_id, state);
    create index samples_parent on samples (parent_id);
    create index samples_submitter on samples (submitter_id);

    -- Chain of custody: every handoff, appended, never changed.
    create table sample_custody_events (
      id bigserial primary key,
      sample_id uuid not null references samples(id),
      accession text not null,
      event text not null,
      actor text not null,
      from_location text,
      to_location text,
      condition text,
      details jsonb not null default '{}',
      occurred_at timestamptz not null default clock_timestamp(),
      idempotency_key text unique
    );
    create index sample_custody_sample on sample_custody_events (sample_id, id);
    create function sample_custody_refuse_change() returns trigger language plpgsql as $$
    begin
      raise exception 'sample_custody_events is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
    end $$;
    create trigger sample_custody_append_only before update or delete on sample_custody_events
      for each row execute function sample_custody_refuse_change();

    -- A storage position holds one sample; the primary key makes a second occupant impossible.
    create table sample_storage (
      freezer text not null,
      rack text not null,
      box text not null,
      position text not null,
      sample_id uuid not null unique references samples(id),
      stored_at timestamptz not null default now(),
      primary key (freezer, rack, box, position)
    );

    create table sample_routes (
      sample_id uuid not null references samples(id),
      test_code text not null references test_codes(code),
      work_queue text not null,
      piece_accession text not null,
      state text not null default 'queued' check (state in ('queued', 'resulted', 'cancelled')),
      routed_at timestamptz not null default now(),
      resulted_at timestamptz,
      primary key (sample_id, test_code)
    );
    create index sample_routes_queue on sample_routes (work_queue, state);

    create table sample_recollection_requests (
      id uuid primary key default gen_random_uuid(),
      sample_id uuid not null references samples(id),
      accession text not null,
      tests text[] not null,
      rejection_code text not null,
      reason text not null,
      state text not null default 'open' check (state in ('open', 'fulfilled', 'cancelled')),
      idempotency_key text not null unique,
      created_at timestamptz not null default now()
    );

    -- When a rejection should open a CAPA: a code (or any), a source (or any), so many within a window.
    create table sample_capa_rules (
      id uuid primary key default gen_random_uuid(),
      rejection_code text,
      source text,
      threshold integer not null default 1 check (threshold >= 1),
      window_days integer not null default 30 check (window_days >= 1),
      active boolean not null default true,
      created_at timestamptz not null default now()
    );
    -- The hook the CAPA process consumes: a request with its source record, written in the rejection's transaction.
    create table sample_capa_requests (
      id uuid primary key default gen_random_uuid(),
      source_type text not null default 'sample',
      source_id text not null,
      rule_id uuid references sample_capa_rules(id),
      reason text not null,
      details jsonb not null default '{}',
      state text not null default 'pending' check (state in ('pending', 'started', 'dismissed')),
      capa_workflow_id text,
      idempotency_key text not null unique,
      created_at timestamptz not null default now()
    );
    create index sample_capa_requests_pending on sample_capa_requests (created_at) where state = 'pending';

    -- Every webhook event, keyed by the sender's event ID: a replayed delivery is acknowledged once, applied once.
    create table sample_webhook_events (
      source text not null references sample_sources(name),
      event_id text not null,
      type text not null,
      accession text,
      payload jsonb not null,
      received_at timestamptz not null default now(),
      applied_at timestamptz,
      primary key (source, event_id)
    );

    -- External orders whose sample type or test codes labflow does not know: held for a person, not dropped.
    create table sample_held_orders (
      id uuid primary key default gen_random_uuid(),
      source text not null,
      event_id text not null,
      reason text not null,
      payload jsonb not null,
      state text not null default 'held' check (state in ('held', 'resolved', 'discarded')),
      accession text,
      created_at timestamptz not null default now(),
      resolved_at timestamptz,
      unique (source, event_id)
    );

    insert into sample_types (code, name, containers, preservatives, min_volume_ml, temperature_classes,
                              reject_hemolyzed, reject_clotted, stability) values
      ('SERUM', 'Serum (SST)', '{SST,red_top}', '{clot_activator,none}', 1.0, '{room,refrigerated,frozen}', true, false,
        '{"room":"8h","refrigerated":"7d","frozen":"30d"}'),
      ('WB_EDTA', 'Whole blood, EDTA', '{lavender_top}', '{K2EDTA,K3EDTA}', 2.0, '{room,refrigerated}', true, true,
        '{"room":"24h","refrigerated":"72h"}'),
      ('PL_CIT', 'Plasma, sodium citrate', '{light_blue_top}', '{sodium_citrate}', 2.7, '{room}', true, true,
        '{"room":"4h"}'),
      ('URINE', 'Urine, random', '{urine_cup,urine_tube}', '{none,boric_acid}', 10.0, '{room,refrigerated}', false, false,
        '{"room":"2h","refrigerated":"24h"}'),
      ('CSF', 'Cerebrospinal fluid', '{sterile_tube}', '{none}', 0.5, '{room}', false, false, '{"room":"1h"}');

    insert into test_codes (code, name, sample_type, work_queue) values
      ('CMP', 'Comprehensive metabolic panel', 'SERUM', 'chemistry'),
      ('LIPID', 'Lipid panel', 'SERUM', 'chemistry'),
      ('TSH', 'Thyroid stimulating hormone', 'SERUM', 'immunoassay'),
      ('CBC', 'Complete blood count', 'WB_EDTA', 'hematology'),
      ('HBA1C', 'Hemoglobin A1c', 'WB_EDTA', 'chemistry'),
      ('PT', 'Prothrombin time / INR', 'PL_CIT', 'coagulation'),
      ('UA', 'Urinalysis', 'URINE', 'urinalysis'),
      ('UCX', 'Urine culture', 'URINE', 'microbiology'),
      ('CSFCX', 'CSF culture', 'CSF', 'microbiology');

    -- Default rule: three rejections for the same reason from the same source within 30 days open a CAPA.
    insert into sample_capa_rules (rejection_code, source, threshold, window_days) values (null, null, 3, 30);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop table if exists sample_held_orders, sample_webhook_events, sample_capa_requests, sample_capa_rules,
      sample_recollection_requests, sample_routes, sample_storage, sample_custody_events, samples, sample_batches,
      sample_sources, test_codes, sample_types cascade;
    drop function if exists sample_custody_refuse_change;
    drop sequence if exists sample_accession_seq;
  `);
}
