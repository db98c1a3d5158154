import type { Knex } from 'knex';

/**
 * CoA extraction, continued: every provider call of an extraction is its own row (the provider, its try, the output
 * budget it had and how it ended), a proposal can be rejected by quality (nothing recorded), and a confirmed one
 * becomes the incoming inspection's recorded values: one version per confirmation, never changed or deleted, each
 * naming the extraction it came from and who confirmed it when.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table coa_extraction_attempts (
      id uuid primary key default gen_random_uuid(),
      idempotency_key text not null unique,
      extraction_id uuid not null references coa_extractions(id),
      provider text not null check (provider in ('anthropic', 'openai', 'ollama')),
      try integer not null check (try > 0),
      max_tokens integer not null check (max_tokens > 0),
      outcome text not null,
      model text,
      error_detail text,
      issues jsonb,
      answer_text text,
      parameters jsonb,
      prompt_version text,
      prompt_hash text,
      latency_ms integer,
      started_at timestamptz not null,
      recorded_at timestamptz not null default now()
    );
    create index coa_extraction_attempts_extraction on coa_extraction_attempts (extraction_id, recorded_at);

    alter table coa_extractions drop constraint coa_extractions_stage_check;
    alter table coa_extractions add constraint coa_extractions_stage_check
      check (stage in ('requested', 'proposed', 'confirmed', 'rejected'));
    alter table coa_extractions
      add column rejected_by uuid references users(id),
      add column rejected_at timestamptz,
      add column rejection_reason text;

    create table incoming_inspection_records (
      id uuid primary key default gen_random_uuid(),
      sample_id uuid not null references samples(id),
      version integer not null check (version > 0),
      supplier text not null,
      product text not null,
      lot_number text not null,
      expiry_date text not null,
      parameters jsonb not null,
      coa_extraction_id uuid not null unique references coa_extractions(id),
      confirmed_by uuid not null references users(id),
      confirmed_at timestamptz not null,
      recorded_at timestamptz not null default now(),
      unique (sample_id, version)
    );

    -- an attempt is what happened; a recorded value is superseded by a new version, never changed
    create trigger coa_extraction_attempts_append_only before update or delete on coa_extraction_attempts
      for each row execute function append_only_refuse_change();
    create trigger coa_extraction_attempts_no_truncate before truncate on coa_extraction_attempts
      for each statement execute function append_only_refuse_change();
    create trigger incoming_inspection_records_append_only before update or delete on incoming_inspection_records
      for each row execute function append_only_refuse_change();
    create trigger incoming_inspection_records_no_truncate before truncate on incoming_inspection_records
      for each statement execute function append_only_refuse_change();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop table if exists incoming_inspection_records;
    alter table coa_extractions drop column if exists rejected_by, drop column if exists rejected_at,
      drop column if exists rejection_reason;
    alter table coa_extractions drop constraint coa_extractions_stage_check;
    alter table coa_extractions add constraint coa_extractions_stage_check check (stage in ('requested', 'proposed', 'confirmed'));
    drop table if exists coa_extraction_attempts;
  `);
}
