import type { Knex } from 'knex';

/**
 * The ERP's request budget shared by every worker, and incoming inspection as sample intake: the sample type and
 * tests of a retained sample of a received lot, and the link from an inspection hook to the sample it started.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    -- One row per ERP site: the earliest time the next request may go (a token bucket kept as its next slot), and
    -- until when a 429's Retry-After holds every caller back.
    create table erp_rate_budgets (
      site text primary key,
      next_at timestamptz not null default '-infinity',
      paused_until timestamptz not null default '-infinity'
    );

    -- A retained sample of a received lot: no patient, no collection; any storage temperature the item needs.
    insert into sample_types (code, name, containers, preservatives, min_volume_ml, temperature_classes,
                              reject_hemolyzed, reject_clotted, stability) values
      ('INCOMING', 'Incoming material (retained sample of a received lot)', '{original_container,retain_container}',
       '{none}', 0, '{room,refrigerated,frozen}', false, false,
       '{"room": "365d", "refrigerated": "365d", "frozen": "365d"}');
    insert into test_codes (code, name, sample_type, work_queue) values
      ('IQC_COA', 'Certificate of analysis checked against the specification', 'INCOMING', 'incoming_qc'),
      ('IQC_ID', 'Identity of the material confirmed', 'INCOMING', 'incoming_qc');

    alter table incoming_inspection_hooks add column sample_id uuid references samples(id);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table incoming_inspection_hooks drop column if exists sample_id;
    delete from test_codes where code in ('IQC_COA', 'IQC_ID');
    delete from sample_types where code = 'INCOMING';
    drop table if exists erp_rate_budgets;
  `);
}
