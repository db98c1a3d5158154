import { ApplicationFailure } from '@temporalio/common';
import { afterCursor, ErpFailure, type ErpCursor, type ErpEntity } from '../../common/erp-sync';
import type { ErpAdapter, ErpKey, ErpPage, ErpRecord, RefusedRecord, SupplierStatusResult, SupplierStatusWrite } from './adapter';
import { RateBudget, retryAfterMs, type RequestBudget } from './rate-budget';

export interface ErpNextOptions {
  url: string;
  apiKey: string;
  apiSecret: string;
  timeoutMs: number;
  ratePerSecond: number;
  /** The request budget shared with the other workers (SharedRateBudget); without it, one for this process. */
  budget?: RequestBudget;
  /** 429s answered by waiting Retry-After inside the call before the activity itself is retried. */
  rateLimitWaits?: number;
  detailConcurrency?: number;
}

/** An answer from ERPNext other than 2xx, with its exception type and the user-facing message. */
export class ErpNextError extends Error {
  constructor(
    readonly status: number,
    readonly excType: string,
    message: string,
  ) {
    super(message);
  }
}

type Doc = Record<string, unknown> & { name: string; modified: string; docstatus?: number };

interface EntitySpec {
  doctype: string;
  fields: string[];
  filters?: unknown[][];
  map: (doc: Doc) => Record<string, unknown>;
  /** Child table read from the document itself (GET /api/resource/<DocType>/<name>). */
  children?: { field: string; map: (row: Record<string, unknown>) => Record<string, unknown> };
}

const DOCTYPE_ENTITY: Record<string, ErpEntity> = {
  Supplier: 'suppliers',
  Item: 'items',
  'Purchase Order': 'purchase_orders',
  'Purchase Receipt': 'purchase_receipts',
};
const bool = (v: unknown) => v === 1 || v === true || v === '1';
const num = (v: unknown) => (v === null || v === undefined || v === '' ? null : Number(v));
const str = (v: unknown) => (v === null || v === undefined || v === '' ? null : String(v));

const SPECS: Record<ErpEntity, EntitySpec> = {
  suppliers: {
    doctype: 'Supplier',
    fields: ['name', 'modified', 'docstatus', 'supplier_name', 'supplier_group', 'country', 'disabled', 'on_hold', 'hold_type'],
    map: (d) => ({
      supplier_name: str(d.supplier_name),
      supplier_group: str(d.supplier_group),
      country: str(d.country),
      disabled: bool(d.disabled),
      on_hold: bool(d.on_hold),
      hold_type: str(d.hold_type),
    }),
  },
  items: {
    doctype: 'Item',
    fields: ['name', 'modified', 'docstatus', 'item_name', 'item_group', 'stock_uom', 'inspection_required_before_purchase', 'disabled'],
    map: (d) => ({
      item_name: str(d.item_name),
      item_group: str(d.item_group),
      stock_uom: str(d.stock_uom),
      inspection_required: bool(d.inspection_required_before_purchase),
      disabled: bool(d.disabled),
    }),
  },
  purchase_orders: {
    doctype: 'Purchase Order',
    fields: ['name', 'modified', 'docstatus', 'supplier', 'transaction_date', 'status', 'amended_from', 'grand_total', 'currency'],
    map: (d) => ({
      supplier: str(d.supplier),
      transaction_date: str(d.transaction_date),
      status: str(d.status),
      amended_from: str(d.amended_from),
      grand_total: num(d.grand_total),
      currency: str(d.currency),
    }),
    children: {
      field: 'items',
      map: (r) => ({ idx: num(r.idx), item_code: str(r.item_code), qty: num(r.qty), rate: num(r.rate), uom: str(r.uom) }),
    },
  },
  purchase_receipts: {
    doctype: 'Purchase Receipt',
    fields: ['name', 'modified', 'docstatus', 'supplier', 'posting_date', 'status', 'amended_from'],
    map: (d) => ({
      supplier: str(d.supplier),
      posting_date: str(d.posting_date),
      status: str(d.status),
      amended_from: str(d.amended_from),
    }),
    children: {
      field: 'items',
      map: (r) => ({
        idx: num(r.idx),
        item_code: str(r.item_code),
        qty: num(r.qty),
        purchase_order: str(r.purchase_order),
        batch_no: str(r.batch_no),
      }),
    },
  },
  deletions: {
    doctype: 'Deleted Document',
    fields: ['name', 'modified', 'deleted_doctype', 'deleted_name'],
    filters: [['deleted_doctype', 'in', Object.keys(DOCTYPE_ENTITY)]],
    map: (d) => ({ entity: DOCTYPE_ENTITY[String(d.deleted_doctype)], erp_name: str(d.deleted_name) }),
  },
};

const VERDICT_DOCTYPE = 'LabFlow Supplier Verdict';

/** ERPNext's message for the user: `_server_messages` is a JSON list of JSON-encoded {message} objects. */
function messageOf(body: Record<string, unknown> | null, fallback: string): string {
  try {
    const list = JSON.parse(String(body?._server_messages ?? '[]')) as string[];
    const messages = list.map((m) => String((JSON.parse(m) as { message?: string }).message ?? m));
    if (messages.length) return messages.join('; ');
  } catch {
    // fall through to the other fields
  }
  return String(body?.exception ?? body?.message ?? fallback);
}

async function mapLimited<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]);
      }
    }),
  );
  return out;
}

export class ErpNextAdapter implements ErpAdapter {
  readonly system = 'erpnext';
  private readonly budget: RequestBudget;

  constructor(private readonly options: ErpNextOptions) {
    this.budget = options.budget ?? new RateBudget(options.ratePerSecond);
  }

  private async call(method: string, path: string, query?: Record<string, unknown>, body?: unknown): Promise<unknown> {
    const url = new URL(`/api/resource/${path}`, this.options.url);
    for (const [key, value] of Object.entries(query ?? {})) {
      url.searchParams.set(key, typeof value === 'string' ? value : JSON.stringify(value));
    }
    for (let waits = 0; ; waits++) {
      await this.budget.take();
      let res: Response;
      let text: string;
      try {
        res = await fetch(url, {
          method,
          headers: {
            authorization: `token ${this.options.apiKey}:${this.options.apiSecret}`,
            accept: 'application/json',
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(this.options.timeoutMs),
        });
        text = await res.text();
      } catch (err) {
        const timeout = (err as Error).name === 'TimeoutError';
        throw ApplicationFailure.create({
          type: timeout ? ErpFailure.Timeout : ErpFailure.Unavailable,
          message: `${method} ${url.pathname}: ${timeout ? `no answer within ${this.options.timeoutMs} ms` : (err as Error).message}`,
        });
      }
      if (res.status === 429) {
        const wait = retryAfterMs(res.headers.get('retry-after'));
        await this.budget.pause(wait);
        if (waits < (this.options.rateLimitWaits ?? 3)) continue;
        throw ApplicationFailure.create({ type: ErpFailure.RateLimited, message: 'the ERP keeps answering 429', nextRetryDelay: wait });
      }
      let json: Record<string, unknown> | null = null;
      try {
        json = text ? (JSON.parse(text) as Record<string, unknown>) : null;
      } catch {
        json = null;
      }
      if (res.ok) return json?.data;
      const error = new ErpNextError(res.status, String(json?.exc_type ?? ''), messageOf(json, `HTTP ${res.status}`));
      if (res.status === 401 || res.status === 403) {
        throw ApplicationFailure.create({
          type: ErpFailure.Auth,
          message: `the ERP refused labflow's API key (${res.status} ${error.excType || ''}): ${error.message}`,
          nonRetryable: true,
        });
      }
      if (res.status >= 500) {
        throw ApplicationFailure.create({
          type: ErpFailure.Unavailable,
          message: `${method} ${url.pathname}: ${res.status} ${error.message}`,
        });
      }
      throw error;
    }
  }

  private async list(spec: EntitySpec, filters: unknown[][], limit: number, orderBy = 'modified asc, name asc'): Promise<Doc[]> {
    return (await this.call('GET', encodeURIComponent(spec.doctype), {
      fields: spec.fields,
      filters: [...(spec.filters ?? []), ...filters],
      order_by: orderBy,
      limit_start: 0,
      limit_page_length: limit,
    })) as Doc[];
  }

  private async get(doctype: string, name: string): Promise<Doc | null> {
    try {
      return (await this.call('GET', `${encodeURIComponent(doctype)}/${encodeURIComponent(name)}`)) as Doc;
    } catch (err) {
      if (err instanceof ErpNextError && err.status === 404) return null;
      throw err;
    }
  }

  private toRecord(spec: EntitySpec, doc: Doc): ErpRecord {
    return {
      name: doc.name,
      modified: doc.modified,
      docstatus: (doc.docstatus ?? 0) as 0 | 1 | 2,
      fields: spec.map(doc),
      children: spec.children
        ? ((doc[spec.children.field] as Record<string, unknown>[] | undefined) ?? []).map(spec.children.map)
        : undefined,
    };
  }

  private async detail(spec: EntitySpec, head: Doc): Promise<ErpRecord | RefusedRecord | null> {
    try {
      const doc = await this.get(spec.doctype, head.name);
      return doc ? this.toRecord(spec, doc) : null;
    } catch (err) {
      if (err instanceof ErpNextError) {
        return {
          name: head.name,
          modified: head.modified,
          reason: `${err.status} ${err.message}`,
          errorType: err.excType || `HTTP${err.status}`,
          payload: head,
        };
      }
      throw err;
    }
  }

  async fetchChanges(entity: ErpEntity, after: ErpCursor | null, limit: number): Promise<ErpPage> {
    const spec = SPECS[entity];
    let rows = await this.list(spec, after ? [['modified', '>=', after.modified]] : [], limit);
    let fresh = rows.filter((r) => afterCursor(r, after));
    let end = rows.length < limit;
    if (!end && fresh.length === 0 && after) {
      // A full page of rows sharing the cursor's `modified`: walk that tie by name, then go past it.
      rows = await this.list(
        spec,
        [
          ['modified', '=', after.modified],
          ['name', '>', after.name],
        ],
        limit,
      );
      if (rows.length === 0) {
        rows = await this.list(spec, [['modified', '>', after.modified]], limit);
        end = rows.length < limit;
      }
      fresh = rows;
    }
    const lastRow = rows.at(-1);
    const last = lastRow ? { modified: lastRow.modified, name: lastRow.name } : null;
    if (!spec.children) return { records: fresh.map((d) => this.toRecord(spec, d)), refused: [], last, end };
    const details = await mapLimited(fresh, this.options.detailConcurrency ?? 8, (head) => this.detail(spec, head));
    const records: ErpRecord[] = [];
    const refused: RefusedRecord[] = [];
    for (const d of details) {
      if (!d) continue; // deleted meanwhile: its Deleted Document follows
      if ('reason' in d) refused.push(d);
      else records.push(d);
    }
    return { records, refused, last, end };
  }

  async fetchOne(entity: ErpEntity, name: string): Promise<ErpRecord | RefusedRecord | null> {
    const spec = SPECS[entity];
    return this.detail(spec, { name, modified: '' });
  }

  async listKeys(entity: ErpEntity, afterName: string | null, limit: number): Promise<ErpKey[]> {
    const spec = { ...SPECS[entity], fields: ['name', 'modified', 'docstatus'] };
    const rows = await this.list(spec, afterName === null ? [] : [['name', '>', afterName]], limit, 'name asc');
    return rows.map((r) => ({ name: r.name, modified: r.modified, docstatus: Number(r.docstatus ?? 0) }));
  }

  async writeSupplierStatus(w: SupplierStatusWrite): Promise<SupplierStatusResult> {
    let created: SupplierStatusResult['created'];
    if (w.outcomeUnknown && (await this.get(VERDICT_DOCTYPE, w.eventKey))) {
      created = 'found';
    } else {
      try {
        await this.call('POST', encodeURIComponent(VERDICT_DOCTYPE), undefined, {
          name: w.eventKey,
          supplier: w.supplier,
          status: w.status,
          note: w.note,
        });
        created = 'created';
      } catch (err) {
        if (!(err instanceof ErpNextError && err.status === 409)) throw this.refusal(err);
        created = 'duplicate';
      }
    }
    const wanted = { on_hold: w.status === 'approved' ? 0 : 1, hold_type: w.status === 'approved' ? '' : 'All' };
    for (let conflicts = 0; ; conflicts++) {
      const supplier = await this.get('Supplier', w.supplier);
      if (!supplier)
        throw ApplicationFailure.create({ type: ErpFailure.Refused, message: `the ERP has no supplier ${w.supplier}`, nonRetryable: true });
      if (bool(supplier.on_hold) === Boolean(wanted.on_hold) && String(supplier.hold_type ?? '') === wanted.hold_type) {
        return { created, hold: 'unchanged', modified: supplier.modified, conflicts };
      }
      try {
        // `modified` as read: ERPNext refuses the save (417 TimestampMismatchError) if someone saved in between.
        const saved = (await this.call('PUT', `Supplier/${encodeURIComponent(w.supplier)}`, undefined, {
          ...wanted,
          modified: supplier.modified,
        })) as Doc;
        return { created, hold: 'updated', modified: saved.modified, conflicts };
      } catch (err) {
        const mismatch = err instanceof ErpNextError && err.status === 417 && /TimestampMismatch/.test(err.excType);
        if (!mismatch) throw this.refusal(err);
        if (conflicts >= 4) {
          throw ApplicationFailure.create({
            type: ErpFailure.Unavailable,
            message: `supplier ${w.supplier} keeps changing under the write`,
          });
        }
      }
    }
  }

  /** A 4xx the ERP means (validation, permission on a record): retrying the same write cannot succeed. */
  private refusal(err: unknown): unknown {
    if (!(err instanceof ErpNextError)) return err;
    return ApplicationFailure.create({
      type: ErpFailure.Refused,
      message: `${err.status} ${err.excType}: ${err.message}`,
      nonRetryable: true,
      details: [{ status: err.status, excType: err.excType }],
    });
  }
}
