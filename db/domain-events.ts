import type { Knex } from 'knex';
import { validDomainEvent, type DomainEventInput, type DomainEventType } from '../common/domain-events';
import type { Db } from './knex';

/** The channel a trigger NOTIFYs at each event's commit, with the event's type as payload (the migration's). */
export const DOMAIN_EVENTS_CHANNEL = 'labflow_domain_events';

/** Writes a domain event; call it inside the transaction of the change it announces. */
export async function appendDomainEvent(trx: Knex | Knex.Transaction, event: DomainEventInput): Promise<void> {
  const { version, data } = validDomainEvent(event);
  await trx('domain_events').insert({
    // Placeholder: the insert trigger assigns the commit-ordered sequence number.
    seq: 0,
    type: event.type,
    version,
    entity_type: event.entityType,
    entity_id: event.entityId,
    data: JSON.stringify(data),
  });
}

export interface DomainEvent {
  seq: number;
  id: string;
  type: DomainEventType;
  version: number;
  entityType: string;
  entityId: string;
  data: Record<string, unknown>;
  occurredAt: string;
}

export function toDomainEvent(row: Record<string, unknown>): DomainEvent {
  return {
    seq: Number(row.seq),
    id: row.id as string,
    type: row.type as DomainEventType,
    version: row.version as number,
    entityType: row.entity_type as string,
    entityId: row.entity_id as string,
    data: row.data as Record<string, unknown>,
    occurredAt: new Date(row.occurred_at as string).toISOString(),
  };
}

/** One page of the event history in commit order, after a sequence number, optionally of some types. */
export async function listDomainEvents(
  db: Db | Knex.Transaction,
  filter: { types?: string[]; after?: number; limit: number },
): Promise<DomainEvent[]> {
  const q = db('domain_events')
    .where('seq', '>', filter.after ?? 0)
    .orderBy('seq')
    .limit(filter.limit);
  if (filter.types?.length) q.whereIn('type', filter.types);
  return (await q).map(toDomainEvent);
}

/** The newest event's sequence number: where a new subscription starts. */
export async function newestDomainEventSeq(db: Db | Knex.Transaction): Promise<number> {
  const row = await db('domain_events').max('seq as seq').first();
  return Number(row?.seq ?? 0);
}
