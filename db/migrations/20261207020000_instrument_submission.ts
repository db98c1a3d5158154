import type { Knex } from 'knex';

/**
 * An instrument's result is submitted by the instrument path: the entry keeps the signed source that reported it
 * (the fact the run's submission step reads, never the caller's word), and the analysis keeps who submitted it —
 * the instrument and its performer, through that source — where a person's submission is in the audit trail.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table analysis_entries add column reported_by_source text check (reported_by_source is null or length(reported_by_source) <= 200);
    alter table analyses add column submitted_by jsonb;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table analyses drop column if exists submitted_by;
    alter table analysis_entries drop column if exists reported_by_source;
  `);
}
