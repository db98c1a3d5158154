import type { Knex } from 'knex';

/** Reading a result value discloses PHI: a sample's analyses, and one analysis, are disclosures of their own kinds. */
const KINDS = `'patient', 'patient_list', 'note', 'note_list', 'note_versions', 'summary', 'summary_job', 'summary_job_list',
       'sample_export', 'summary_export', 'audit_trail'`;

export async function up(knex: Knex): Promise<void> {
  const { rows } = await knex.raw(`select pg_get_constraintdef(oid) as def from pg_constraint where conname = 'phi_access_events_record_kind_check'`);
  // Keep whatever kinds later-merged migrations added; add the two of results.
  const existing = [...String(rows[0]?.def ?? '').matchAll(/'([a-z_]+)'/g)].map((m) => m[1]);
  const kinds = [...new Set([...existing, ...KINDS.match(/[a-z_]+/g)!, 'analysis', 'analysis_list'])].map((k) => `'${k}'`).join(', ');
  await knex.raw(`
    alter table phi_access_events drop constraint phi_access_events_record_kind_check;
    alter table phi_access_events add constraint phi_access_events_record_kind_check check (record_kind in (${kinds}));
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    delete from phi_access_event_patients where event_id in (select id from phi_access_events where record_kind in ('analysis', 'analysis_list'));
    alter table phi_access_events drop constraint phi_access_events_record_kind_check;
    alter table phi_access_events add constraint phi_access_events_record_kind_check check (record_kind in (${KINDS}));
  `);
}
