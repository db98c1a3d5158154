import type { Knex } from 'knex';
import {
  chainLink,
  GENESIS_LINK,
  readNewestCheckpoint,
  writeCheckpoint,
  type AuditChainSettings,
  type CheckpointRead,
} from './audit-chain';
import { domainEventOfAudit } from '../common/domain-events';
import { appendDomainEvent } from './domain-events';
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
  const insert = trx('audit_events').insert(row).returning('seq');
  const written = await (event.idempotencyKey ? insert.onConflict('idempotency_key').ignore() : insert);
  // A retried write recorded nothing new, so it announces nothing new either.
  if (written.length === 0) return;
  const domainEvent = domainEventOfAudit({ ...event, details: event.details ?? {} });
  if (domainEvent) await appendDomainEvent(trx, domainEvent);
}

export interface AuditVerdict {
  ok: boolean;
  /** Events verified: all of them when ok, else those before the first broken link. */
  events: number;
  firstBroken?: { seq: number; reason: string };
  /** Present when labflow holds the chain key: what the keyed links and the anchoring checkpoint say. */
  keyed?: KeyedVerdict;
}

export interface KeyedVerdict {
  /** Events whose keyed link verified. */
  sealed: number;
  /** The newest events, not sealed yet: until the next seal run only their unkeyed hashes vouch for them. */
  unsealed: number;
  /** The checkpoint the chain was checked against; null when there is none yet. */
  checkpoint: { file: string; headSeq: number; at: string } | null;
  /** The newest checkpoint could not be trusted, so the chain is not vouched for whatever its links say. */
  checkpointRefused?: { file: string; reason: string };
}

export interface VerifyOptions {
  /** The chain key and checkpoint directories; without them only the unkeyed hashes are checked. */
  chain?: AuditChainSettings | null;
  /** The anchor to check against; by default the newest checkpoint in the chain's directories. */
  anchor?: CheckpointRead;
  batchSize?: number;
}

interface Walked {
  verdict: AuditVerdict;
  head: { seq: number; hash: string; link: string } | null;
  toSeal: { seq: number; link: string }[];
}

/**
 * Walks the whole chain in order, recomputing every hash and, with the chain key, every keyed link, and checks it
 * against the newest signed checkpoint; names the first link that does not hold.
 */
export async function verifyAuditChain(db: Db, options: VerifyOptions = {}): Promise<AuditVerdict> {
  const chain = options.chain ?? null;
  const anchor = chain ? (options.anchor ?? readNewestCheckpoint(chain)) : ({ kind: 'none' } as const);
  return (await walkChain(db, chain, anchor, options.batchSize ?? 5000, false)).verdict;
}

/**
 * The nightly seal: verifies the chain against the newest checkpoint, seals the events recorded since the last
 * seal, and anchors the new head in a signed checkpoint file outside the database. Seals and anchors nothing when
 * the chain does not verify, so a rewritten trail is never blessed.
 */
export async function sealAuditChain(
  db: Db,
  chain: AuditChainSettings,
  now: Date,
  batchSize = 5000,
): Promise<{ verdict: AuditVerdict; newlySealed: number; checkpointFile: string | null }> {
  const anchor = readNewestCheckpoint(chain);
  const { verdict, head, toSeal } = await walkChain(db, chain, anchor, batchSize, true);
  if (!verdict.ok || !head) return { verdict, newlySealed: 0, checkpointFile: null };
  await db.transaction(async (trx) => {
    // One sealer at a time; a second one finds the rows sealed and inserts nothing.
    await trx.raw(`select pg_advisory_xact_lock(hashtext('labflow.audit_seals'))`);
    for (let i = 0; i < toSeal.length; i += 1000) {
      await trx('audit_seals')
        .insert(toSeal.slice(i, i + 1000))
        .onConflict('seq')
        .ignore();
    }
  });
  const { file, checkpoint } = writeCheckpoint(chain, head, now);
  verdict.keyed = {
    sealed: verdict.events,
    unsealed: 0,
    checkpoint: { file, headSeq: checkpoint.headSeq, at: checkpoint.at },
  };
  return { verdict, newlySealed: toSeal.length, checkpointFile: file };
}

async function walkChain(
  db: Db,
  chain: AuditChainSettings | null,
  anchor: CheckpointRead,
  batchSize: number,
  collect: boolean,
): Promise<Walked> {
  const cp = anchor.kind === 'ok' ? anchor.checkpoint : null;
  // A database restored from a dump taken before seals existed has no seals table: all its events are unsealed.
  const hasSeals = chain !== null && (await db.raw(`select to_regclass('audit_seals') as t`)).rows[0].t !== null;
  const keyed: KeyedVerdict | undefined = chain
    ? {
        sealed: 0,
        unsealed: 0,
        checkpoint: anchor.kind === 'ok' ? { file: anchor.file, headSeq: cp!.headSeq, at: cp!.at } : null,
        ...(anchor.kind === 'refused' ? { checkpointRefused: { file: anchor.file, reason: anchor.reason } } : {}),
      }
    : undefined;
  const toSeal: Walked['toSeal'] = [];
  let head: Walked['head'] = null;
  let expectedPrev = GENESIS_LINK;
  let prevLink = GENESIS_LINK;
  let expectedSeq = 1;
  let events = 0;
  let unsealedFrom: number | null = null;
  const result = (firstBroken?: { seq: number; reason: string }): Walked => {
    if (keyed && !firstBroken) keyed.unsealed = events - keyed.sealed;
    const ok = !firstBroken && !keyed?.checkpointRefused;
    return {
      verdict: { ok, events, ...(firstBroken ? { firstBroken } : {}), ...(keyed ? { keyed } : {}) },
      head,
      toSeal,
    };
  };
  const anchoredBy = cp ? `the checkpoint of ${cp.at} anchors the chain at event ${cp.headSeq}` : '';
  for (;;) {
    const rows: { seq: number; prev_hash: string; hash: string; recomputed: string; link: string | null }[] = (
      await db.raw(
        `select e.seq, e.prev_hash, e.hash, audit_event_digest(e.prev_hash, e) as recomputed,
                ${hasSeals ? 's.link' : 'null::text as link'}
           from audit_events e ${hasSeals ? 'left join audit_seals s on s.seq = e.seq' : ''}
          where e.seq >= ? order by e.seq limit ?`,
        [expectedSeq, batchSize],
      )
    ).rows;
    for (const row of rows) {
      const broken = (reason: string, seq = row.seq) => result({ seq, reason });
      if (row.seq !== expectedSeq) return broken(`event ${expectedSeq} is missing`);
      if (row.prev_hash !== expectedPrev) return broken('does not link to the event before it');
      if (row.recomputed !== row.hash) return broken('its content does not match its hash');
      let link = '';
      if (chain && keyed) {
        link = chainLink(chain.key, row.seq, row.hash, prevLink);
        if (row.link !== null) {
          if (unsealedFrom !== null) {
            events = unsealedFrom - 1;
            return broken('its keyed seal is missing, yet later events are sealed', unsealedFrom);
          }
          if (row.link !== link) return broken('its keyed link does not verify: it, or an event before it, was rewritten and re-hashed');
          keyed.sealed += 1;
        } else {
          if (cp && row.seq <= cp.headSeq) return broken(`its keyed seal is missing, yet ${anchoredBy}`);
          unsealedFrom ??= row.seq;
          if (collect) toSeal.push({ seq: row.seq, link });
        }
        if (cp && row.seq === cp.headSeq && (row.hash !== cp.headHash || link !== cp.headLink)) {
          return broken(`it is not the event the checkpoint of ${cp.at} anchored`);
        }
        prevLink = link;
      }
      head = { seq: row.seq, hash: row.hash, link };
      expectedPrev = row.hash;
      expectedSeq += 1;
      events += 1;
    }
    if (rows.length < batchSize) break;
  }
  if (cp && events < cp.headSeq) return result({ seq: events + 1, reason: `event ${events + 1} is missing: ${anchoredBy}` });
  return result();
}

const TRAIL_COLUMNS = ['seq', 'occurred_at', 'actor', 'action', 'entity_type', 'entity_id', 'details', 'hash'] as const;

export interface AuditTrailRow {
  seq: number;
  occurred_at: Date;
  actor: string;
  action: string;
  entity_type: string;
  entity_id: string;
  details: Record<string, unknown>;
  hash: string;
}

/**
 * Narrows a trail to the events of one record kept on another's trail: a summary job's events are on its patient's
 * trail, each naming the job in `details.workflowId`.
 */
export interface TrailFilter {
  detail: string;
  equals: string;
}

/** One keyset page of a record's trail, oldest first: the events after sequence number `afterSeq`. */
export async function auditTrailPage(
  db: Db,
  entityType: string,
  entityIds: string[],
  page: { afterSeq?: number; limit: number },
  filter?: TrailFilter,
): Promise<AuditTrailRow[]> {
  const query = db('audit_events')
    .select(...TRAIL_COLUMNS)
    .where('entity_type', entityType)
    .whereIn('entity_id', entityIds)
    .andWhere('seq', '>', page.afterSeq ?? 0);
  if (filter) query.andWhereRaw('details ->> ? = ?', [filter.detail, filter.equals]);
  const rows = await query.orderBy('seq').limit(page.limit);
  return rows.map((r: AuditTrailRow) => ({ ...r, seq: Number(r.seq) }));
}

/** One record on a trail: the entity type and ID its events are recorded with. */
export interface TrailRecord {
  entityType: string;
  entityId: string;
}

/**
 * One keyset page of the events of several records, in chain order (seq): the events after `afterSeq` of every
 * record, merged. Each record's events are read in seq order from the index on (entity_type, entity_id, seq), at most
 * a page of them, and merged by seq: a page reads at most (records × limit) index entries, however long the trails are.
 */
export async function recordsTrailPage(db: Db, records: TrailRecord[], page: { afterSeq?: number; limit: number }): Promise<AuditTrailRow[]> {
  const distinct = [...new Map(records.map((r) => [`${r.entityType}\u0000${r.entityId}`, r])).values()];
  if (distinct.length === 0) return [];
  const eventsOf = (r: TrailRecord) =>
    db('audit_events')
      .select(...TRAIL_COLUMNS)
      .where({ entity_type: r.entityType, entity_id: r.entityId })
      .andWhere('seq', '>', page.afterSeq ?? 0)
      .orderBy('seq')
      .limit(page.limit);
  const rows: AuditTrailRow[] = await db
    .select(...TRAIL_COLUMNS)
    .from(db.unionAll(distinct.map(eventsOf), true).as('merged'))
    .orderBy('seq')
    .limit(page.limit);
  return rows.map((r) => ({ ...r, seq: Number(r.seq) }));
}

/** Every page of a trail, oldest first, read with `read` until it ends: nothing is cut, however long it is. */
async function* eachPage(read: (afterSeq: number, limit: number) => Promise<AuditTrailRow[]>, pageSize: number): AsyncGenerator<AuditTrailRow[]> {
  let afterSeq = 0;
  for (;;) {
    const rows = await read(afterSeq, pageSize);
    if (rows.length) yield rows;
    if (rows.length < pageSize) return;
    afterSeq = rows[rows.length - 1].seq;
  }
}

/** A record's whole trail, page by page; nothing is cut, however long it is. */
export function eachAuditPage(
  db: Db,
  entityType: string,
  entityIds: string[],
  pageSize = 1000,
  filter?: TrailFilter,
): AsyncGenerator<AuditTrailRow[]> {
  return eachPage((afterSeq, limit) => auditTrailPage(db, entityType, entityIds, { afterSeq, limit }, filter), pageSize);
}

/** A record's complete trail, oldest first. */
export async function auditTrail(db: Db, entityType: string, entityIds: string[], filter?: TrailFilter): Promise<AuditTrailRow[]> {
  const all: AuditTrailRow[] = [];
  for await (const rows of eachAuditPage(db, entityType, entityIds, 1000, filter)) all.push(...rows);
  return all;
}

/** The complete trail of several records, merged in chain order. */
export async function recordsTrail(db: Db, records: TrailRecord[], pageSize = 1000): Promise<AuditTrailRow[]> {
  const all: AuditTrailRow[] = [];
  for await (const rows of eachPage((afterSeq, limit) => recordsTrailPage(db, records, { afterSeq, limit }), pageSize)) all.push(...rows);
  return all;
}
