import type { Knex } from 'knex';

/**
 * Certificate-of-analysis extraction for incoming inspection: the certificate's text (a supplier document, no PHI),
 * the fields proposed for it with their validation and provenance, and the fields a quality person confirmed or
 * corrected, which alone are recorded on the inspection.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table coa_extractions (
      id uuid primary key default gen_random_uuid(),
      workflow_id text not null unique,
      sample_id uuid references samples(id),
      text text not null check (length(text) between 1 and 200000),
      stage text not null default 'requested' check (stage in ('requested', 'proposed', 'confirmed')),
      source text,
      ai_generated boolean,
      model text,
      prompt_version text,
      prompt_hash text,
      parameters jsonb,
      attempts jsonb not null default '[]',
      validation jsonb,
      requested_by uuid not null references users(id),
      requested_at timestamptz not null default now(),
      proposed_at timestamptz,
      confirmed_fields jsonb,
      corrections jsonb,
      confirmed_by uuid references users(id),
      confirmed_at timestamptz
    );
    create index coa_extractions_sample on coa_extractions (sample_id) where sample_id is not null;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop table if exists coa_extractions');
}
