import type { Knex } from 'knex';

/** LLM tokens (input + output) of every provider attempt in the summary runs a user asked for since 00:00 UTC. */
export async function tokensSpentToday(db: Knex, userId: string): Promise<number> {
  const row = await db('summary_attempts as a')
    .join('summary_jobs as j', 'j.workflow_id', 'a.workflow_id')
    .where('j.requested_by', userId)
    .andWhere('a.started_at', '>=', db.raw("date_trunc('day', now() at time zone 'UTC') at time zone 'UTC'"))
    .first(db.raw('coalesce(sum(coalesce(a.input_tokens, 0) + coalesce(a.output_tokens, 0)), 0)::bigint as spent'));
  return Number(row?.spent ?? 0);
}
