import type { Knex } from 'knex';

/**
 * A retest's result withdraws a call still open on the value it retests: withdrawal reason `retested`. A sample's
 * calls (setting its ordering provider locks and reads them all) are found by their own index.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create index critical_calls_by_sample on critical_calls (sample_id);
    alter table critical_calls drop constraint critical_calls_withdrawal_reason_check;
    alter table critical_calls add constraint critical_calls_withdrawal_reason_check
      check (withdrawal_reason in ('not_critical', 'retracted', 'rejected', 'cancelled', 'retested'));
  `);
}

export async function down(knex: Knex): Promise<void> {
  const [{ n }] = await knex('critical_calls').where({ withdrawal_reason: 'retested' }).count({ n: '*' });
  if (Number(n) > 0) throw new Error('calls withdrawn by a retest exist: their reason has no place before this migration');
  await knex.raw(`
    alter table critical_calls drop constraint critical_calls_withdrawal_reason_check;
    alter table critical_calls add constraint critical_calls_withdrawal_reason_check
      check (withdrawal_reason in ('not_critical', 'retracted', 'rejected', 'cancelled'));
    drop index critical_calls_by_sample;
  `);
}
