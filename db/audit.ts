import type { Knex } from 'knex';
import type { Db } from './knex';

export interface AuditEvent {
  actorId?: string | null;
  /** Username, or a system name such as 'system:document-approval'. */
  actor: string;
  action: string;
  entityType: string;
  entityId: string;
  details?: Record<string, unknown>;
  /** Makes a retried write a no-op: the same key is recorded once. */
  idempotencyKey?: string;
}

/** Appends to the hash-chained trail; call it inside the transaction of the change it records. */
export async function appendAudit(trx: Knex | Knex.Transaction, event: AuditEvent): Promise<void> {
  const row = {
    actor_id: event.actorId ?? null,
    actor: event.actor,
    action: event.action,
    entity_type: event.entityType,
    entity_id: event.entityId,
    details: JSON.stringify(event.details ?? {}),
    idempotency_key: event.idempotencyKey ?? null,
    // Placeholders: the insert trigger assigns the sequence number and the chain hashes.
    seq: 0,
    prev_hash: '',
    hash: '',
  };
  const insert = trx('audit_events').insert(row);
  await (event.idempotencyKey ? insert.onConflict('idempotency_key').ignore() : insert);
}

export interface AuditVerdict {
  ok: boolean;
  events: number;
  firstBroken?: { seq: number; reason: string };
}

/** Walks the whole chain in order, recomputing every hash; names the first link that does not hold. */
export async function verifyAuditChain(db: Db, batchSize = 5000): Promise<AuditVerdict> {
  let expectedPrev = '0'.repeat(64);
  let expectedSeq = 1;
  let events = 0;
  for (;;) {
    const rows: { seq: number; prev_hash: string; hash: string; recomputed: string }[] = (
      await db.raw(
        `select e.seq, e.prev_hash, e.hash, audit_event_digest(e.prev_hash, e) as recomputed
           from audit_events e where e.seq >= ? order by e.seq limit ?`,
        [expectedSeq, batchSize],
      )
    ).rows;
    for (const row of rows) {
      const broken = (reason: string): AuditVerdict => ({ ok: false, events, firstBroken: { seq: row.seq, reason } });
      if (row.seq !== expectedSeq) return broken(`event ${expectedSeq} is missing`);
      if (row.prev_hash !== expectedPrev) return broken('does not link to the event before it');
      if (row.recomputed !== row.hash) return broken('its content does not match its hash');
      expectedPrev = row.hash;
      expectedSeq += 1;
      events += 1;
    }
    if (rows.length < batchSize) return { ok: true, events };
  }
}

export async function auditTrail(db: Db, entityType: string, entityIds: string[], limit = 1000) {
  return db('audit_events')
    .select('seq', 'occurred_at', 'actor', 'action', 'entity_type', 'entity_id', 'details', 'hash')
    .where('entity_type', entityType)
    .whereIn('entity_id', entityIds)
    .orderBy('seq')
    .limit(limit);
}
