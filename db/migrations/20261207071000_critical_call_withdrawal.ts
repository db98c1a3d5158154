import type { Knex } from 'knex';

/**
 * A critical-value call is withdrawn when its analysis's value stops being critical before anyone read it back
 * (edited to a value that is not critical, retracted, rejected, cancelled): the state `withdrawn`, when, why and by
 * whose action. A value that is critical again afterwards opens a new call of the same analysis, numbered in turn
 * (`call_number`): an analysis has any number of calls, at most one of them open (calling or escalated).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table critical_calls drop constraint critical_calls_state_check;
    alter table critical_calls drop constraint critical_calls_analysis_id_key;
    alter table critical_calls add column call_number integer not null default 1 check (call_number >= 1);
    alter table critical_calls add column withdrawn_at timestamptz;
    alter table critical_calls add column withdrawal_reason text
      check (withdrawal_reason in ('not_critical', 'retracted', 'rejected', 'cancelled'));
    alter table critical_calls add column withdrawn_by uuid references users(id);
    alter table critical_calls add constraint critical_calls_state_check
      check (state in ('calling', 'escalated', 'notified', 'withdrawn'));
    alter table critical_calls add constraint critical_calls_withdrawn_check
      check ((state = 'withdrawn') = (withdrawn_at is not null) and (withdrawn_at is null) = (withdrawal_reason is null));
    alter table critical_calls add constraint critical_calls_analysis_call_number_key unique (analysis_id, call_number);
    create unique index critical_calls_one_open_per_analysis on critical_calls (analysis_id) where state in ('calling', 'escalated');
    drop index critical_calls_open;
    create index critical_calls_open on critical_calls (opened_at, id) where state in ('calling', 'escalated');
  `);
}

/** Refused while withdrawn or numbered calls exist: the schema before this cannot hold them, and attempts are write-once. */
export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    do $$ begin
      if exists (select 1 from critical_calls where call_number > 1 or state = 'withdrawn') then
        raise exception 'withdrawn or numbered critical-value calls exist; the schema before this migration cannot hold them';
      end if;
    end $$;
    drop index critical_calls_open;
    create index critical_calls_open on critical_calls (opened_at, id) where state <> 'notified';
    drop index critical_calls_one_open_per_analysis;
    alter table critical_calls drop constraint critical_calls_analysis_call_number_key;
    alter table critical_calls drop constraint critical_calls_withdrawn_check;
    alter table critical_calls drop constraint critical_calls_state_check;
    alter table critical_calls drop column withdrawn_by;
    alter table critical_calls drop column withdrawal_reason;
    alter table critical_calls drop column withdrawn_at;
    alter table critical_calls drop column call_number;
    alter table critical_calls add constraint critical_calls_state_check check (state in ('calling', 'escalated', 'notified'));
    alter table critical_calls add constraint critical_calls_analysis_id_key unique (analysis_id);
  `);
}
