import { appendAudit } from './audit';
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

/** Whether a backup is under way (a second would compete for the same disk and database). */
export async function backupRunning(db: Db): Promise<boolean> {
  return Boolean(await db('backups').where({ state: 'running' }).first('id'));
}

export function listBackups(db: Db, q: { limit: number; offset: number; state?: string }) {
  const query = db('backups').orderBy('taken_at', 'desc').limit(q.limit).offset(q.offset);
  if (q.state) query.where('state', q.state);
  return query;
}

export function recentRestoreDrills(db: Db, limit: number) {
  return db('restore_drills').orderBy('started_at', 'desc').limit(limit);
}

export function findBackup(db: Db, id: string) {
  return db('backups').where({ id }).first();
}

/**
 * Sets or releases a backup's legal hold, audited; only a verified backup can be held. Says why not when the
 * backup is unknown or not verified.
 */
export async function setLegalHold(
  db: Db,
  actor: { userId: string; username: string },
  id: string,
  change: { hold: boolean; reason: string },
): Promise<{ backup: Record<string, unknown> } | { notFound: true } | { notVerified: string }> {
  return db.transaction(async (trx) => {
    const found = await trx('backups').where({ id }).forNoKeyUpdate().first();
    if (!found) return { notFound: true as const };
    if (change.hold && found.state !== 'verified') return { notVerified: found.state as string };
    await trx('backups').where({ id }).update({ legal_hold: change.hold });
    await appendAudit(trx, {
      actorId: actor.userId,
      actor: actor.username,
      action: change.hold ? 'backup.legal_hold_set' : 'backup.legal_hold_released',
      entityType: 'backup',
      entityId: id,
      details: { reason: change.reason },
    });
    return { backup: await trx('backups').where({ id }).first() };
  });
}

/** Saves a user's digest preferences (only those given) and answers them all. */
export async function savePreferences(
  db: Db,
  userId: string,
  changes: { time_zone?: string | null; digest?: boolean },
): Promise<{ timeZone: string | null; digest: boolean }> {
  await db('user_preferences')
    .insert({ user_id: userId, ...changes })
    .onConflict('user_id')
    .merge({ ...changes, updated_at: db.fn.now() });
  const row = await db('user_preferences').where({ user_id: userId }).first();
  return { timeZone: row.time_zone, digest: row.digest };
}
