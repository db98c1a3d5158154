import type { Knex } from 'knex';
import { afterCursor, type ErpCursor, type ErpEntity, type ErpRecord, type RefusedRecord } from '../common/erp-sync';
import { appendAudit } from './audit';
import { copyRows } from './copy';
import type { Db } from './knex';

type Trx = Knex | Knex.Transaction;

/** labflow's table for each synced entity (deletions have none: they mark rows in the others). */
export const ENTITY_TABLE: Record<Exclude<ErpEntity, 'deletions'>, string> = {
  suppliers: 'erp_suppliers',
  items: 'erp_items',
  purchase_orders: 'erp_purchase_orders',
  purchase_receipts: 'erp_purchase_receipts',
};

const COLUMNS: Record<Exclude<ErpEntity, 'deletions'>, [string, string][]> = {
  suppliers: [
    ['supplier_name', 'text'],
    ['supplier_group', 'text'],
    ['country', 'text'],
    ['disabled', 'boolean'],
    ['on_hold', 'boolean'],
    ['hold_type', 'text'],
  ],
  items: [
    ['item_name', 'text'],
    ['item_group', 'text'],
    ['stock_uom', 'text'],
    ['inspection_required', 'boolean'],
    ['disabled', 'boolean'],
  ],
  purchase_orders: [
    ['supplier', 'text'],
    ['transaction_date', 'date'],
    ['status', 'text'],
    ['amended_from', 'text'],
    ['grand_total', 'numeric'],
    ['currency', 'text'],
  ],
  purchase_receipts: [
    ['supplier', 'text'],
    ['posting_date', 'date'],
    ['status', 'text'],
    ['amended_from', 'text'],
  ],
};

const CHILDREN: Partial<Record<ErpEntity, { table: string; parent: string; columns: [string, string][] }>> = {
  purchase_orders: {
    table: 'erp_purchase_order_items',
    parent: 'purchase_order',
    columns: [
      ['idx', 'integer'],
      ['item_code', 'text'],
      ['qty', 'numeric'],
      ['rate', 'numeric'],
      ['uom', 'text'],
    ],
  },
  purchase_receipts: {
    table: 'erp_purchase_receipt_items',
    parent: 'purchase_receipt',
    columns: [
      ['idx', 'integer'],
      ['item_code', 'text'],
      ['qty', 'numeric'],
      ['purchase_order', 'text'],
      ['batch_no', 'text'],
    ],
  },
};

export async function readCursor(db: Trx, entity: ErpEntity): Promise<ErpCursor | null> {
  const row = await db('erp_sync_cursors').where({ entity }).first('cursor_modified', 'cursor_name');
  return row?.cursor_modified ? { modified: row.cursor_modified, name: row.cursor_name } : null;
}

/** "+01:00:00" for 3600 seconds east of UTC. */
function utcOffset(seconds: number): string {
  const abs = Math.abs(seconds);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${seconds < 0 ? '-' : '+'}${two(Math.floor(abs / 3600))}:${two(Math.floor((abs % 3600) / 60))}:${two(abs % 60)}`;
}

/**
 * The site's UTC offset for each hour of its local time that these `modified` values fall in, as Postgres reads
 * that time zone. Hours whose offset changes within them are left out (their rows are converted by Postgres).
 */
async function siteOffsets(trx: Trx, timeZone: string, modified: string[]): Promise<Map<string, string>> {
  const hours = [...new Set(modified.map((m) => m.slice(0, 13)))];
  const offset = (at: string) =>
    `extract(epoch from (h || '${at}')::timestamp - ((h || '${at}')::timestamp at time zone ? at time zone 'UTC'))::int`;
  const rows: { h: string; first: number; last: number }[] = (
    await trx.raw(`select h, ${offset(':00')} as first, ${offset(':59:59.999999')} as last from unnest(?::text[]) as h`, [
      timeZone,
      timeZone,
      hours,
    ])
  ).rows;
  return new Map(rows.filter((r) => r.first === r.last).map((r) => [r.h, utcOffset(r.first)]));
}

const columnValues = (entity: Exclude<ErpEntity, 'deletions'>, r: ErpRecord) => [
  r.name,
  ...COLUMNS[entity].map(([c]) => r.fields[c] ?? null),
  r.docstatus,
  r.modified,
];

/** Which of these names labflow has for the entity (one primary-key probe). */
export async function knownNames(db: Trx, entity: Exclude<ErpEntity, 'deletions'>, names: string[]): Promise<Set<string>> {
  return new Set<string>(await db(ENTITY_TABLE[entity]).whereRaw('name = any(?::text[])', [names]).pluck('name'));
}

/**
 * Stores a page. Rows labflow has never seen are COPYed straight into the table (COPY is the cheapest way in, for
 * Postgres and for the worker); that is safe because every writer of these tables holds the entity's cursor row
 * lock (storePage), so nobody inserts the same names meanwhile. `probed` is what labflow had when the caller looked
 * ahead of this transaction: a row stored since then makes the COPY fail on its key, inside a savepoint, and the page
 * goes the other way. The rest are upserted with one statement from column arrays, never going back in time.
 */
async function upsertRows(
  trx: Knex.Transaction,
  entity: Exclude<ErpEntity, 'deletions'>,
  records: ErpRecord[],
  timeZone: string,
  probed?: Set<string>,
): Promise<void> {
  if (!records.length) return;
  const table = ENTITY_TABLE[entity];
  const cols = COLUMNS[entity];
  const names = ['name', ...cols.map(([c]) => c), 'docstatus', 'erp_modified'];
  const types = ['text', ...cols.map(([, t]) => t), 'smallint', 'text'];
  const hourOf = (r: ErpRecord) => r.modified.slice(0, 13);

  const known =
    probed ??
    (await knownNames(
      trx,
      entity,
      records.map((r) => r.name),
    ));
  const fresh = records.filter((r) => !known.has(r.name));
  const offsets = fresh.length
    ? await siteOffsets(
        trx,
        timeZone,
        fresh.map((r) => r.modified),
      )
    : new Map<string, string>();
  const copied = fresh.filter((r) => offsets.has(hourOf(r)));
  const copy = (into: Knex.Transaction) =>
    copyRows(
      into,
      table,
      [...names, 'erp_modified_at'],
      copied.map((r) => [...columnValues(entity, r), `${r.modified}${offsets.get(hourOf(r))}`]),
    );
  let rest = copied.length === records.length ? [] : records.filter((r) => known.has(r.name) || !offsets.has(hourOf(r)));
  if (!probed) await copy(trx);
  else if (copied.length) {
    try {
      await trx.transaction(copy);
    } catch (err) {
      if ((err as { code?: string }).code !== '23505') throw err;
      rest = records;
    }
  }

  if (rest.length) {
    const rows = rest.map((r) => columnValues(entity, r));
    const arrays = names.map((_, i) => rows.map((row) => row[i]));
    await trx.raw(
      `insert into ${table} (${names.join(', ')}, erp_modified_at, synced_at, deleted_at)
       select ${names.map((c) => `x.${c}`).join(', ')}, x.erp_modified::timestamp at time zone ?, now(), null
         from unnest(${types.map((t) => `?::${t}[]`).join(', ')}) as x(${names.join(', ')})
       on conflict (name) do update set ${[...names.slice(1), 'erp_modified_at'].map((c) => `${c} = excluded.${c}`).join(', ')},
         synced_at = now(), deleted_at = null
       where ${table}.erp_modified <= excluded.erp_modified`,
      [timeZone, ...(arrays as unknown as Knex.ValueDict[])],
    );
  }
  const child = CHILDREN[entity];
  if (!child) return;
  const parents = records.map((r) => r.name);
  await trx.raw(`delete from ${child.table} where ${child.parent} = any(?)`, [parents]);
  const childRows = records.flatMap((r) => (r.children ?? []).map((c) => ({ ...c, [child.parent]: r.name })));
  if (childRows.length) {
    const childNames = [child.parent, ...child.columns.map(([c]) => c)];
    await trx.raw(
      `insert into ${child.table} (${childNames.join(', ')})
       select ${childNames.join(', ')} from jsonb_to_recordset(?::jsonb) as x(${child.parent} text, ${child.columns.map(([c, t]) => `${c} ${t}`).join(', ')})
       on conflict do nothing`,
      [JSON.stringify(childRows)],
    );
  }
  // An amendment supersedes the document it was amended from, whichever of the two arrives first.
  await trx.raw(
    `update ${table} o set superseded_by = a.name from ${table} a
      where a.amended_from = o.name and (a.name = any(?) or o.name = any(?)) and o.superseded_by is distinct from a.name`,
    [parents, parents],
  );
}

/** Refusals labflow itself makes: required fields, and links to records it does not have. */
async function validate(trx: Trx, entity: ErpEntity, records: ErpRecord[]): Promise<{ ok: ErpRecord[]; refused: RefusedRecord[] }> {
  const refused: RefusedRecord[] = [];
  const refuse = (r: ErpRecord, reason: string, errorType: string) =>
    refused.push({ name: r.name, modified: r.modified, reason, errorType, payload: { ...r.fields, children: r.children ?? [] } });
  const required: Partial<Record<ErpEntity, string[]>> = {
    suppliers: ['supplier_name'],
    items: ['item_name', 'stock_uom'],
    purchase_orders: ['supplier'],
    purchase_receipts: ['supplier'],
  };
  let suppliers = new Set<string>();
  let items = new Set<string>();
  if (entity === 'purchase_orders' || entity === 'purchase_receipts') {
    const supplierNames = [...new Set(records.map((r) => String(r.fields.supplier)))];
    const itemCodes = [...new Set(records.flatMap((r) => (r.children ?? []).map((c) => String(c.item_code))))];
    suppliers = new Set((await trx('erp_suppliers').whereIn('name', supplierNames).whereNull('deleted_at').pluck('name')) as string[]);
    items = new Set((await trx('erp_items').whereIn('name', itemCodes).whereNull('deleted_at').pluck('name')) as string[]);
  }
  const ok = records.filter((r) => {
    const missing = (required[entity] ?? []).filter((f) => r.fields[f] === null || r.fields[f] === undefined || r.fields[f] === '');
    if (missing.length) return refuse(r, `required field(s) missing: ${missing.join(', ')}`, 'MissingField') && false;
    if (entity === 'purchase_orders' || entity === 'purchase_receipts') {
      if (!suppliers.has(String(r.fields.supplier)))
        return refuse(r, `missing linked record: Supplier ${String(r.fields.supplier)}`, 'MissingLink') && false;
      const unknown = (r.children ?? []).map((c) => String(c.item_code)).filter((code) => !items.has(code));
      if (unknown.length) return refuse(r, `missing linked record: Item ${[...new Set(unknown)].join(', ')}`, 'MissingLink') && false;
    }
    return true;
  });
  return { ok, refused };
}

async function applyDeletions(trx: Trx, records: ErpRecord[]): Promise<number> {
  let deleted = 0;
  for (const entity of Object.keys(ENTITY_TABLE) as (keyof typeof ENTITY_TABLE)[]) {
    const names = records.filter((r) => r.fields.entity === entity).map((r) => String(r.fields.erp_name));
    if (!names.length) continue;
    const result = await trx.raw(`update ${ENTITY_TABLE[entity]} set deleted_at = now() where name = any(?) and deleted_at is null`, [
      names,
    ]);
    deleted += result.rowCount ?? 0;
    if (entity === 'purchase_receipts') {
      await trx.raw(
        `update incoming_inspection_hooks set state = 'cancelled' where purchase_receipt = any(?) and state = 'pending' and sample_id is null`,
        [names],
      );
    }
  }
  return deleted;
}

/** Submitted receipts of items that need incoming inspection leave a pending hook for sample intake. */
async function recordInspectionHooks(trx: Trx, records: ErpRecord[]): Promise<number> {
  const submitted = records.filter((r) => r.docstatus === 1).map((r) => r.name);
  const cancelled = records.filter((r) => r.docstatus === 2).map((r) => r.name);
  if (cancelled.length) {
    await trx.raw(
      `update incoming_inspection_hooks set state = 'cancelled' where purchase_receipt = any(?) and state = 'pending' and sample_id is null`,
      [cancelled],
    );
  }
  if (!submitted.length) return 0;
  const result = await trx.raw(
    `insert into incoming_inspection_hooks (purchase_receipt, idx, item_code, qty, supplier, batch_no)
     select ri.purchase_receipt, ri.idx, ri.item_code, ri.qty, r.supplier, ri.batch_no
       from erp_purchase_receipt_items ri
       join erp_purchase_receipts r on r.name = ri.purchase_receipt
       join erp_items i on i.name = ri.item_code
      where r.name = any(?) and r.docstatus = 1 and i.inspection_required
     on conflict do nothing`,
    [submitted],
  );
  return result.rowCount ?? 0;
}

export async function deadLetter(
  trx: Trx,
  p: { direction?: 'inbound' | 'outbound'; entity: string; syncRunId: string | null; refused: RefusedRecord[] },
) {
  if (!p.refused.length) return;
  await trx.raw(
    `insert into erp_dead_letters (direction, entity, erp_name, erp_modified, payload, reason, error_type, sync_run_id)
     select ?, ?, x.name, x.modified, x.payload, x.reason, x.error_type, ? from jsonb_to_recordset(?::jsonb)
         as x(name text, modified text, payload jsonb, reason text, error_type text)
     on conflict (direction, entity, erp_name) where state in ('open', 'retry_requested') do update set
       erp_modified = excluded.erp_modified, payload = excluded.payload, reason = excluded.reason, error_type = excluded.error_type,
       state = 'open', attempts = erp_dead_letters.attempts + 1, last_seen_at = now(), sync_run_id = excluded.sync_run_id`,
    [
      p.direction ?? 'inbound',
      p.entity,
      p.syncRunId,
      JSON.stringify(
        p.refused.map((r) => ({
          name: r.name,
          modified: r.modified || null,
          payload: r.payload,
          reason: r.reason,
          error_type: r.errorType,
        })),
      ),
    ],
  );
}

/** Whether any of the entity's inbound records waits in the dead letters (a probe of their partial unique index). */
async function hasLiveDeadLetters(trx: Trx, entity: ErpEntity): Promise<boolean> {
  const row = await trx('erp_dead_letters')
    .where({ direction: 'inbound', entity })
    .whereIn('state', ['open', 'retry_requested'])
    .first(trx.raw('1 as found'));
  return !!row;
}

export interface PageResult {
  cursor: ErpCursor | null;
  fetched: number;
  stored: number;
  deadLettered: number;
  deleted: number;
  inspectionHooks: number;
}

/**
 * Stores one page in one transaction: upserts, child rows, dead letters, deletions, inspection hooks, the run's
 * counts, an audit event, and the cursor. Rows at or before the cursor (already stored by an earlier attempt or a
 * concurrent run) are dropped under the cursor's row lock, so a retried page changes nothing twice.
 */
export async function storePage(
  db: Db,
  p: {
    entity: ErpEntity;
    syncRunId: string;
    records: ErpRecord[];
    refused: RefusedRecord[];
    last: ErpCursor | null;
    timeZone: string;
    auditKey: string;
    /** Dead-letter retries: rows behind the cursor, stored without moving it. */
    retry?: boolean;
    /** The names of `records` labflow had when the caller probed them (knownNames) before this transaction. */
    known?: Set<string>;
  },
): Promise<PageResult> {
  return db.transaction(async (trx) => {
    await trx.raw('insert into erp_sync_cursors (entity) values (?) on conflict do nothing', [p.entity]);
    const row = await trx('erp_sync_cursors').where({ entity: p.entity }).forNoKeyUpdate().first('cursor_modified', 'cursor_name');
    const cursor: ErpCursor | null = row.cursor_modified ? { modified: row.cursor_modified, name: row.cursor_name } : null;
    const fresh = p.retry ? p.records : p.records.filter((r) => afterCursor(r, cursor));
    const freshRefused = p.retry ? p.refused : p.refused.filter((r) => afterCursor(r, cursor));
    const { ok, refused } = await validate(trx, p.entity, fresh);
    const allRefused = [...freshRefused, ...refused];
    let deleted = 0;
    let inspectionHooks = 0;
    if (p.entity === 'deletions') deleted = await applyDeletions(trx, ok);
    else {
      await upsertRows(trx, p.entity, ok, p.timeZone, p.known);
      if (p.entity === 'purchase_receipts') inspectionHooks = await recordInspectionHooks(trx, ok);
    }
    await deadLetter(trx, { entity: p.entity, syncRunId: p.syncRunId, refused: allRefused });
    if (ok.length && (await hasLiveDeadLetters(trx, p.entity))) {
      await trx('erp_dead_letters')
        .where({ direction: 'inbound', entity: p.entity })
        .whereIn('state', ['open', 'retry_requested'])
        .whereRaw('erp_name = any(?)', [ok.map((r) => r.name)])
        .update({ state: 'resolved', closed_at: trx.fn.now(), closed_by: 'system:erp-sync', close_reason: 'synced' });
    }
    const next = !p.retry && p.last && afterCursor(p.last, cursor) ? p.last : cursor;
    if (next !== cursor) {
      await trx('erp_sync_cursors')
        .where({ entity: p.entity })
        .update({ cursor_modified: next!.modified, cursor_name: next!.name, updated_at: trx.fn.now() });
    }
    const result: PageResult = {
      cursor: next,
      fetched: fresh.length + freshRefused.length,
      stored: ok.length,
      deadLettered: allRefused.length,
      deleted,
      inspectionHooks,
    };
    if (result.fetched > 0) {
      await trx.raw(
        `update erp_sync_runs set counts = counts || jsonb_build_object(?::text, jsonb_build_object(
           'fetched', coalesce((counts->?->>'fetched')::int, 0) + ?,
           'stored', coalesce((counts->?->>'stored')::int, 0) + ?,
           'deadLettered', coalesce((counts->?->>'deadLettered')::int, 0) + ?,
           'deleted', coalesce((counts->?->>'deleted')::int, 0) + ?,
           'inspectionHooks', coalesce((counts->?->>'inspectionHooks')::int, 0) + ?,
           'pages', coalesce((counts->?->>'pages')::int, 0) + 1))
         where id = ?`,
        [
          p.entity,
          p.entity,
          result.fetched,
          p.entity,
          result.stored,
          p.entity,
          result.deadLettered,
          p.entity,
          result.deleted,
          p.entity,
          result.inspectionHooks,
          p.entity,
          p.syncRunId,
        ],
      );
      await appendAudit(trx, {
        actor: 'system:erp-sync',
        action: p.retry ? 'erp.dead_letters_retried' : 'erp.page_stored',
        entityType: 'erp_sync',
        entityId: p.entity,
        details: { syncRunId: p.syncRunId, stored: result.stored, deadLettered: result.deadLettered, deleted, cursor: next },
        idempotencyKey: p.auditKey,
      });
    }
    return result;
  });
}

export async function beginRun(db: Db, run: { id: string; workflowId: string; scope: string; mode: string; requestedBy: string }) {
  await db('erp_sync_runs')
    .insert({ id: run.id, workflow_id: run.workflowId, scope: run.scope, mode: run.mode, requested_by: run.requestedBy })
    .onConflict('id')
    .ignore();
}

export async function finishRun(db: Trx, id: string, outcome: { state: 'completed' | 'failed'; error?: string }) {
  await db('erp_sync_runs')
    .where({ id, state: 'running' })
    .update({ state: outcome.state, error: outcome.error ?? null, finished_at: db.fn.now() });
}

export async function recordDrift(db: Db, id: string, entity: string, drift: Record<string, unknown>) {
  await db.raw(`update erp_sync_runs set drift = coalesce(drift, '{}'::jsonb) || jsonb_build_object(?::text, ?::jsonb) where id = ?`, [
    entity,
    JSON.stringify(drift),
    id,
  ]);
}

const runColumns = ['id', 'workflow_id', 'scope', 'mode', 'requested_by', 'state', 'counts', 'drift', 'error', 'started_at', 'finished_at'];

export async function listRuns(db: Db, q: { limit: number; offset: number; scope?: string; state?: string }) {
  const query = db('erp_sync_runs').select(runColumns).orderBy('started_at', 'desc').limit(q.limit).offset(q.offset);
  if (q.scope) query.where('scope', q.scope);
  if (q.state) query.where('state', q.state);
  return query;
}

export const getRun = (db: Db, id: string) => db('erp_sync_runs').where({ id }).first(runColumns);

export async function listDeadLetters(db: Db, q: { limit: number; offset: number; state?: string; entity?: string }) {
  const query = db('erp_dead_letters').orderBy('last_seen_at', 'desc').limit(q.limit).offset(q.offset);
  if (q.state) query.where('state', q.state);
  if (q.entity) query.where('entity', q.entity);
  return query;
}

export const getDeadLetter = (db: Db, id: string) => db('erp_dead_letters').where({ id }).first();

/** The names of this entity's dead letters an operator asked to retry. */
export async function retryRequested(db: Db, entity: ErpEntity): Promise<{ id: string; erp_name: string }[]> {
  return db('erp_dead_letters').where({ direction: 'inbound', entity, state: 'retry_requested' }).select('id', 'erp_name');
}

/** The live records labflow holds, for reconciliation. */
export async function localKeys(
  db: Db,
  entity: Exclude<ErpEntity, 'deletions'>,
): Promise<{ name: string; modified: string; docstatus: number }[]> {
  return (await db.raw(`select name, erp_modified as modified, docstatus from ${ENTITY_TABLE[entity]} where deleted_at is null`)).rows;
}

/** The receipt line a sample of received goods was taken for (incoming inspection), as its label identifies it. */
export async function materialOf(db: Db, sampleId: string): Promise<{ item: string; lot: string | null; receipt: string } | null> {
  const hook = await db('incoming_inspection_hooks').where({ sample_id: sampleId }).first('item_code', 'batch_no', 'purchase_receipt');
  return hook ? { item: hook.item_code, lot: hook.batch_no, receipt: hook.purchase_receipt } : null;
}
