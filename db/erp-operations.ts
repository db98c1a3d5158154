import type { Actor } from '../common/roles';
import type { ErpEntity } from '../common/erp-sync';
import { appendAudit } from './audit';
import type { Db } from './knex';

/** An operator's repairs of the ERP sync: cursors moved back, dead letters retried or discarded. Each is audited. */

/** The open sync run of a workflow, if its record says one is running. */
export async function runningSyncRunId(db: Db, workflowId: string): Promise<string | null> {
  return (await db('erp_sync_runs').where({ workflow_id: workflowId, state: 'running' }).first('id'))?.id ?? null;
}

export function listCursors(db: Db) {
  return db('erp_sync_cursors').select('entity', 'cursor_modified', 'cursor_name', 'updated_at').orderBy('entity');
}

/** Moves an entity's cursor to `to` (null: the start), recording where it was. */
export async function resetCursor(
  db: Db,
  actor: Actor,
  entity: ErpEntity,
  to: { modified: string; name: string } | undefined,
  reason: string,
) {
  return db.transaction(async (trx) => {
    const before = await trx('erp_sync_cursors').where({ entity }).first('cursor_modified', 'cursor_name');
    const cursor = { cursor_modified: to?.modified ?? null, cursor_name: to?.name ?? null };
    await trx('erp_sync_cursors')
      .insert({ entity, ...cursor })
      .onConflict('entity')
      .merge({ ...cursor, updated_at: trx.fn.now() });
    await appendAudit(trx, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'erp.cursor_reset',
      entityType: 'erp_sync',
      entityId: entity,
      details: { reason, before: before ?? null, to: to ?? null },
    });
    return { entity, ...cursor };
  });
}

export const DEAD_LETTER_OPEN_STATES = ['open', 'retry_requested'];

export interface DeadLetterRow {
  id: string;
  entity: ErpEntity;
  erp_name: string;
  direction: 'inbound' | 'outbound';
  state: string;
}

export async function markDeadLetterRetryRequested(db: Db, actor: Actor, letter: DeadLetterRow): Promise<void> {
  await db.transaction(async (trx) => {
    await trx('erp_dead_letters').where({ id: letter.id }).update({ state: 'retry_requested' });
    await appendAudit(trx, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'erp.dead_letter_retry_requested',
      entityType: 'erp_dead_letter',
      entityId: letter.id,
      details: { entity: letter.entity, erpName: letter.erp_name, direction: letter.direction },
    });
  });
}

/** Discards an open dead letter; says why not when it is unknown or closed already. */
export async function discardDeadLetter(
  db: Db,
  actor: Actor,
  id: string,
  reason: string,
): Promise<{ discarded: Record<string, unknown> } | { notFound: true } | { closed: string }> {
  return db.transaction(async (trx) => {
    const letter = await trx('erp_dead_letters').where({ id }).forNoKeyUpdate().first();
    if (!letter) return { notFound: true as const };
    if (!DEAD_LETTER_OPEN_STATES.includes(letter.state)) return { closed: letter.state as string };
    const [row] = await trx('erp_dead_letters')
      .where({ id: letter.id })
      .update({ state: 'discarded', closed_at: trx.fn.now(), closed_by: actor.username, close_reason: reason })
      .returning('*');
    await appendAudit(trx, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'erp.dead_letter_discarded',
      entityType: 'erp_dead_letter',
      entityId: letter.id,
      details: { entity: letter.entity, erpName: letter.erp_name, reason },
    });
    return { discarded: row };
  });
}

/** A supplier as the ERP sync stored it (deleted ones included, marked). */
export function findErpSupplier(db: Db, name: string) {
  return db('erp_suppliers').where({ name }).first('name', 'supplier_name', 'on_hold', 'hold_type', 'deleted_at');
}

/** Whether the ERP still has the supplier. */
export async function erpSupplierExists(db: Db, name: string): Promise<boolean> {
  return Boolean(await db('erp_suppliers').where({ name }).whereNull('deleted_at').first('name'));
}

/** QA's qualification of a supplier as projected, if QA ever decided on it. */
export function findSupplierQualification(db: Db, supplier: string) {
  return db('supplier_qualifications').where({ supplier }).first();
}
