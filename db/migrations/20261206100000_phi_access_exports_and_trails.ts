import type { Knex } from 'knex';

/**
 * A summary's export and a patient's audit trail disclose PHI: each is a disclosure of its own kind in the PHI
 * access log.
 */
const KINDS = `'patient', 'patient_list', 'note', 'note_list', 'note_versions', 'summary', 'summary_job', 'summary_job_list',
       'sample_export'`;

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table phi_access_events drop constraint phi_access_events_record_kind_check;
    alter table phi_access_events add constraint phi_access_events_record_kind_check check (record_kind in
      (${KINDS}, 'summary_export', 'audit_trail'));
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table phi_access_events drop constraint phi_access_events_record_kind_check;
    alter table phi_access_events add constraint phi_access_events_record_kind_check check (record_kind in (${KINDS}));
  `);
}
