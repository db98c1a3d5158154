import type { Db } from './knex';

/** A canary older than three 5-minute periods means the scheduled path (Temporal → worker → Postgres) is stuck. */
const STALE_AFTER_MS = 15 * 60_000;

export interface CanaryStatus {
  status: 'ok' | 'stale' | 'never' | 'unknown';
  workflowId?: string;
  completedAt?: string;
  ageSeconds?: number;
}

/** The last health canary, for /readyz details; it never makes readiness fail (the API can serve while a worker is down). */
export async function lastCanary(db: Db): Promise<CanaryStatus> {
  try {
    const row = await db('health_canary').where({ id: 1 }).first('workflow_id', 'completed_at');
    if (!row) return { status: 'never' };
    const completed = new Date(row.completed_at);
    const age = Date.now() - completed.getTime();
    return {
      status: age > STALE_AFTER_MS ? 'stale' : 'ok',
      workflowId: row.workflow_id,
      completedAt: completed.toISOString(),
      ageSeconds: Math.max(0, Math.round(age / 1000)),
    };
  } catch {
    return { status: 'unknown' };
  }
}
