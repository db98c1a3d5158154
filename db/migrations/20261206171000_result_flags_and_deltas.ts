import type { Knex } from 'knex';

/**
 * Flags beyond low/high/critical: warning shoulders on a reference range (limits between the reference interval and
 * the critical limits), `invalid` for a value outside the test's measuring range, and a delta check against the
 * patient's previous verified result of the same test, configured per test. Each entry keeps the measuring range
 * and the delta check it was judged with, as it keeps its reference range.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table reference_ranges add column warning_low numeric, add column warning_high numeric;

    alter table test_result_policies
      add column measuring_low numeric,
      add column measuring_high numeric,
      add column delta_limit numeric check (delta_limit is null or delta_limit > 0),
      add column delta_kind text check (delta_kind in ('absolute', 'percent')),
      add column delta_window_hours integer check (delta_window_hours is null or delta_window_hours > 0),
      add constraint test_result_policies_delta check ((delta_limit is null) = (delta_kind is null)),
      add constraint test_result_policies_measuring check (measuring_low is null or measuring_high is null or measuring_low < measuring_high);

    alter table analysis_entries drop constraint analysis_entries_flag_check;
    alter table analysis_entries add constraint analysis_entries_flag_check check (flag in
      ('normal', 'low', 'high', 'warning_low', 'warning_high', 'critical_low', 'critical_high', 'invalid'));
    alter table analysis_entries add column measuring_snapshot jsonb, add column delta_check jsonb;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table analysis_entries drop column if exists measuring_snapshot, drop column if exists delta_check;
    update analysis_entries set flag = null where flag in ('warning_low', 'warning_high', 'invalid');
    alter table analysis_entries drop constraint analysis_entries_flag_check;
    alter table analysis_entries add constraint analysis_entries_flag_check check (flag in
      ('normal', 'low', 'high', 'critical_low', 'critical_high'));
    alter table test_result_policies drop constraint if exists test_result_policies_delta,
      drop constraint if exists test_result_policies_measuring,
      drop column if exists measuring_low, drop column if exists measuring_high, drop column if exists delta_limit,
      drop column if exists delta_kind, drop column if exists delta_window_hours;
    alter table reference_ranges drop column if exists warning_low, drop column if exists warning_high;
  `);
}
