import type { Knex } from 'knex';

/**
 * Patients, their SOAP notes, and the summaries made of them. Everything here is PHI except the job, attempt
 * and circuit bookkeeping, which hold IDs, hashes and metadata only. Deleting a patient removes their notes,
 * jobs, attempts, edits and summaries (cascades); signatures and the audit trail keep IDs only.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table patients (
      id uuid primary key default gen_random_uuid(),
      given_name text not null check (length(given_name) between 1 and 200),
      family_name text not null check (length(family_name) between 1 and 200),
      date_of_birth date not null,
      mrn text unique check (mrn is null or length(mrn) between 1 and 64),
      sex text check (sex in ('female', 'male', 'other', 'unknown')),
      address text,
      phone text,
      created_by uuid not null references users(id),
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );
    create index patients_name on patients (lower(family_name), lower(given_name));

    -- The care team: clinicians who may read and write this patient's records.
    create table patient_clinicians (
      patient_id uuid not null references patients(id) on delete cascade,
      user_id uuid not null references users(id),
      added_by uuid not null references users(id),
      added_at timestamptz not null default now(),
      primary key (patient_id, user_id)
    );
    create index patient_clinicians_user on patient_clinicians (user_id);

    create table soap_notes (
      id uuid primary key default gen_random_uuid(),
      patient_id uuid not null references patients(id) on delete cascade,
      subjective text not null default '',
      objective text not null default '',
      assessment text not null default '',
      plan text not null default '',
      note_time timestamptz not null,
      author_id uuid not null references users(id),
      -- SHA-256 of the four sections and the note time: what a summary's provenance names.
      content_hash text not null,
      version integer not null default 1,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );
    create index soap_notes_patient on soap_notes (patient_id, note_time);

    -- One row per summary run: the projection lists read, and the notes the run was asked to summarize.
    create table summary_jobs (
      workflow_id text primary key,
      patient_id uuid not null references patients(id) on delete cascade,
      notes_hash text not null,
      note_ids uuid[] not null,
      note_hashes text[] not null,
      stage text not null check (stage in ('requested', 'generating', 'validating', 'ready', 'approved', 'edited',
        'rejected', 'failed_all_providers', 'superseded', 'cancelled')),
      providers text[] not null,
      provider text,
      round integer not null default 1,
      requested_by uuid not null references users(id),
      requested_at timestamptz not null default now(),
      finished_at timestamptz,
      updated_at timestamptz not null default now(),
      rev integer not null default 0
    );
    create index summary_jobs_patient on summary_jobs (patient_id, requested_at desc);

    -- Every provider call, successful or not. candidate_text (PHI) is kept only for output that was complete.
    create table summary_attempts (
      id uuid primary key default gen_random_uuid(),
      -- workflow ID, round, activity ID and attempt: a retried activity records its own try, never a copy.
      idempotency_key text not null unique,
      workflow_id text not null references summary_jobs(workflow_id) on delete cascade,
      round integer not null,
      provider text not null,
      model text,
      outcome text not null check (outcome in ('succeeded', 'rate_limited', 'overloaded', 'server_error', 'timeout',
        'quota_exhausted', 'auth', 'refusal', 'truncated', 'prompt_truncated', 'invalid_response', 'circuit_open',
        'not_configured', 'validation_failed', 'cancelled')),
      error_detail text,
      latency_ms integer,
      input_tokens integer,
      output_tokens integer,
      max_tokens integer,
      prompt_version text,
      prompt_hash text,
      parameters jsonb,
      candidate_text text,
      validation jsonb,
      started_at timestamptz not null,
      finished_at timestamptz not null default now()
    );
    create index summary_attempts_job on summary_attempts (workflow_id, started_at);

    create table summaries (
      id uuid primary key default gen_random_uuid(),
      workflow_id text not null references summary_jobs(workflow_id) on delete cascade,
      round integer not null,
      patient_id uuid not null references patients(id) on delete cascade,
      attempt_id uuid not null references summary_attempts(id) on delete cascade,
      text text not null,
      ai_generated boolean not null,
      provider text not null,
      model text not null,
      prompt_version text not null,
      prompt_hash text not null,
      parameters jsonb not null,
      notes_hash text not null,
      note_hashes jsonb not null,
      validation jsonb not null,
      content_hash text not null,
      status text not null default 'ready' check (status in ('ready', 'approved', 'edited', 'rejected', 'superseded')),
      edited_text text,
      edited_content_hash text,
      reviewed_by uuid references users(id),
      review_decision text check (review_decision in ('approve', 'edit', 'reject')),
      review_comment text,
      reviewed_at timestamptz,
      created_at timestamptz not null default now(),
      unique (workflow_id, round)
    );
    create index summaries_patient on summaries (patient_id, created_at desc);

    -- A reviewer's edited text waits here until the run accepts the signed edit; the run names it by ID.
    create table summary_edits (
      id uuid primary key default gen_random_uuid(),
      summary_id uuid not null references summaries(id) on delete cascade,
      text text not null,
      content_hash text not null,
      author_id uuid not null references users(id),
      created_at timestamptz not null default now()
    );

    -- Per-provider circuit breaker, shared by every worker.
    create table llm_provider_circuits (
      provider text primary key,
      state text not null default 'closed' check (state in ('closed', 'open', 'half_open')),
      consecutive_failures integer not null default 0,
      opened_at timestamptz,
      open_until timestamptz,
      -- While half-open, one trial call holds the circuit until this time.
      trial_until timestamptz,
      last_failure text,
      updated_at timestamptz not null default now()
    );
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop table if exists llm_provider_circuits, summary_edits, summaries, summary_attempts, summary_jobs, soap_notes,
      patient_clinicians, patients;
  `);
}
