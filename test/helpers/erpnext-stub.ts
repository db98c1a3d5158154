import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/**
 * A local server that speaks ERPNext's REST API (/api/resource) closely enough for labflow's adapter: token auth,
 * JSON-encoded fields/filters, `order_by`, `limit_start`/`limit_page_length` (20 rows of `name` by default, no total),
 * site-local `modified` with microseconds, docstatus, amendments, Deleted Document, frappe-shaped errors, and
 * scripted faults. Used by the tests and by bench:erp-sync.
 */
export type StubDoc = Record<string, unknown> & { name: string; modified: string; docstatus: number };

export interface FaultMatch {
  method?: string;
  doctype?: string;
  /** Only requests for this document (GET/PUT /api/resource/<DocType>/<name>). */
  name?: string;
  /** Only list requests. */
  list?: boolean;
  /** Skip this many matching requests before the fault applies. */
  after?: number;
}
export type FaultAction =
  | { kind: 'status'; status: number; excType: string; message: string; retryAfter?: number }
  | { kind: 'delay'; ms: number }
  /** The request takes effect, but the answer comes too late (the caller's outcome is unknown). */
  | { kind: 'applyThenHang'; ms: number };

interface Fault {
  match: FaultMatch;
  times: number;
  seen: number;
  action: FaultAction;
}

export interface StubRequest {
  method: string;
  doctype: string;
  name?: string;
  status: number;
  query?: Record<string, unknown>;
}

const pad = (n: number | bigint, w = 2) => String(n).padStart(w, '0');

/** Site-local "YYYY-MM-DD HH:MM:SS.ffffff" from microseconds since the epoch of the site's wall clock. */
export function siteTime(micros: bigint): string {
  const ms = Number(micros / 1000n);
  const d = new Date(ms);
  return (
    `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(micros % 1_000_000n, 6)}`
  );
}

function compare(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const x = String(a ?? '');
  const y = String(b ?? '');
  return x < y ? -1 : x > y ? 1 : 0;
}

function matches(doc: StubDoc, filter: unknown[]): boolean {
  const [field, op, value] = filter.length === 4 ? filter.slice(1) : filter;
  const v = doc[field as string];
  switch (op) {
    case '=':
      return compare(v, value) === 0;
    case '!=':
      return compare(v, value) !== 0;
    case '>':
      return compare(v, value) > 0;
    case '>=':
      return compare(v, value) >= 0;
    case '<':
      return compare(v, value) < 0;
    case '<=':
      return compare(v, value) <= 0;
    case 'in':
      return (value as unknown[]).some((x) => compare(v, x) === 0);
    case 'not in':
      return !(value as unknown[]).some((x) => compare(v, x) === 0);
    default:
      throw new Error(`unsupported filter operator ${String(op)}`);
  }
}

function normalizeFilters(raw: unknown): unknown[][] {
  if (!raw) return [];
  if (Array.isArray(raw)) return raw as unknown[][];
  return Object.entries(raw as Record<string, unknown>).map(([field, v]) => (Array.isArray(v) ? [field, v[0], v[1]] : [field, '=', v]));
}

export class ErpNextStub {
  readonly docs = new Map<string, Map<string, StubDoc>>();
  readonly requests: StubRequest[] = [];
  readonly faults: Fault[] = [];
  apiKey = 'labflow-key';
  apiSecret = 'labflow-secret';
  revoked = false;
  /** Called before each list request is answered: tests write "concurrently" here, or hold the answer back. */
  onList?: (doctype: string, query: Record<string, unknown>, listCount: number) => void | Promise<void>;
  /** Added to every list answer (a slow ERP, for crash tests). */
  listDelayMs = 0;
  private clock = BigInt(Date.UTC(2026, 10, 2, 8, 0, 0)) * 1000n;
  private sorted = new Map<string, StubDoc[]>();
  private listCount = 0;
  private deletedSeq = 0;
  private server?: Server;
  url = '';

  /** The next site-local `modified`; every write advances the clock by a few microseconds. */
  tick(stepMicros = 37n): string {
    this.clock += stepMicros;
    return siteTime(this.clock);
  }

  table(doctype: string): Map<string, StubDoc> {
    let t = this.docs.get(doctype);
    if (!t) this.docs.set(doctype, (t = new Map()));
    return t;
  }

  /** Inserts or replaces a document; `modified` is the stub's clock unless given (ties are made that way). */
  put(doctype: string, doc: Partial<StubDoc> & { name: string }): StubDoc {
    const full = { docstatus: 0, ...doc, modified: doc.modified ?? this.tick() } as StubDoc;
    full.creation ??= full.modified;
    this.table(doctype).set(full.name, full);
    this.sorted.delete(doctype);
    return full;
  }

  update(doctype: string, name: string, changes: Record<string, unknown>): StubDoc {
    const doc = this.table(doctype).get(name);
    if (!doc) throw new Error(`${doctype} ${name} does not exist`);
    return this.put(doctype, { ...doc, ...changes, modified: undefined, name });
  }

  /** Cancels a submitted document and creates its amendment (`<name>-1`, amended_from), as ERPNext does. */
  amend(doctype: string, name: string, changes: Record<string, unknown> = {}): StubDoc {
    const original = this.update(doctype, name, { docstatus: 2, status: 'Cancelled' });
    const base = String(original.amended_from ? name.replace(/-\d+$/, '') : name);
    const n = original.amended_from ? Number(/-(\d+)$/.exec(name)?.[1] ?? 0) + 1 : 1;
    return this.put(doctype, {
      ...original,
      ...changes,
      name: `${base}-${n}`,
      amended_from: name,
      docstatus: 1,
      status: 'To Receive and Bill',
      modified: undefined,
      creation: undefined,
    });
  }

  /** Deletes a document; only a Deleted Document row remembers it. */
  delete(doctype: string, name: string): void {
    const doc = this.table(doctype).get(name);
    if (!doc) throw new Error(`${doctype} ${name} does not exist`);
    this.table(doctype).delete(name);
    this.sorted.delete(doctype);
    this.deletedSeq += 1;
    this.put('Deleted Document', {
      name: `DEL-${pad(this.deletedSeq, 6)}`,
      deleted_doctype: doctype,
      deleted_name: name,
      data: JSON.stringify(doc),
    });
  }

  fault(match: FaultMatch, action: FaultAction, times = 1): void {
    this.faults.push({ match, action, times, seen: 0 });
  }

  count(filter: Partial<StubRequest> = {}): number {
    return this.requests.filter((r) => Object.entries(filter).every(([k, v]) => r[k as keyof StubRequest] === v)).length;
  }

  private ordered(doctype: string): StubDoc[] {
    let rows = this.sorted.get(doctype);
    if (!rows) {
      rows = [...this.table(doctype).values()].sort((a, b) => compare(a.modified, b.modified) || compare(a.name, b.name));
      this.sorted.set(doctype, rows);
    }
    return rows;
  }

  private takeFault(method: string, doctype: string, name: string | undefined): FaultAction | undefined {
    for (const f of this.faults) {
      const m = f.match;
      if (f.times <= 0) continue;
      if (m.method && m.method !== method) continue;
      if (m.doctype && m.doctype !== doctype) continue;
      if (m.name && m.name !== name) continue;
      if (m.list && name !== undefined) continue;
      f.seen += 1;
      if (f.seen <= (m.after ?? 0)) continue;
      f.times -= 1;
      return f.action;
    }
    return undefined;
  }

  /** `body` is a value to serialize, or JSON text already serialized. */
  private send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (res.writableEnded || res.destroyed) return;
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  }

  private error(res: ServerResponse, status: number, excType: string, message: string, headers: Record<string, string> = {}): void {
    this.send(
      res,
      status,
      {
        exc_type: excType,
        exception: `frappe.exceptions.${excType}: ${message}`,
        _server_messages: JSON.stringify([JSON.stringify({ message, indicator: 'red' })]),
      },
      headers,
    );
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://stub');
    const match = /^\/api\/resource\/([^/]+)(?:\/(.+))?$/.exec(url.pathname);
    const method = req.method ?? 'GET';
    if (!match) return this.error(res, 404, 'DoesNotExistError', `no route ${url.pathname}`);
    const doctype = decodeURIComponent(match[1]);
    const name = match[2] === undefined ? undefined : decodeURIComponent(match[2]);
    const query: Record<string, unknown> = {};
    for (const [k, v] of url.searchParams) {
      try {
        query[k] = JSON.parse(v);
      } catch {
        query[k] = v;
      }
    }
    const record: StubRequest = { method, doctype, name, status: 200, query: name ? undefined : query };
    this.requests.push(record);
    const reply = (status: number) => (record.status = status);

    const auth = req.headers.authorization ?? '';
    if (this.revoked || auth !== `token ${this.apiKey}:${this.apiSecret}`) {
      reply(401);
      return this.error(res, 401, 'AuthenticationError', 'Invalid API key or secret');
    }
    let bodyText = '';
    for await (const chunk of req) bodyText += chunk;

    const fault = this.takeFault(method, doctype, name);
    let hangAfterApply = 0;
    if (fault?.kind === 'status') {
      reply(fault.status);
      return this.error(
        res,
        fault.status,
        fault.excType,
        fault.message,
        fault.retryAfter !== undefined ? { 'retry-after': String(fault.retryAfter) } : {},
      );
    }
    if (fault?.kind === 'delay') await new Promise((r) => setTimeout(r, fault.ms));
    if (fault?.kind === 'applyThenHang') hangAfterApply = fault.ms;

    const answer = async (status: number, body: unknown) => {
      reply(status);
      if (hangAfterApply) await new Promise((r) => setTimeout(r, hangAfterApply));
      this.send(res, status, body);
    };

    if (method === 'GET' && name === undefined) {
      this.listCount += 1;
      await this.onList?.(doctype, query, this.listCount);
      if (this.listDelayMs) await new Promise((r) => setTimeout(r, this.listDelayMs));
      const filters = normalizeFilters(query.filters);
      const fields = (query.fields as string[] | undefined) ?? ['name'];
      const start = Number(query.limit_start ?? 0);
      const length = Number(query.limit_page_length ?? query.limit ?? 20);
      let rows = this.ordered(doctype);
      const orderBy = String(query.order_by ?? 'modified desc');
      if (/^name asc$/i.test(orderBy.trim())) rows = [...rows].sort((a, b) => compare(a.name, b.name));
      else if (/desc/i.test(orderBy)) rows = [...rows].reverse();
      const selected: StubDoc[] = [];
      let skipped = 0;
      // Like the index on `modified` a real site has: start at the first row a lower bound on `modified` allows.
      let from = 0;
      const lower = filters.find((f) => f.length === 3 && f[0] === 'modified' && ['>=', '>', '='].includes(String(f[1])));
      if (lower && rows === this.sorted.get(doctype)) {
        let hi = rows.length;
        while (from < hi) {
          const mid = (from + hi) >> 1;
          if (compare(rows[mid].modified, lower[2]) < 0) from = mid + 1;
          else hi = mid;
        }
      }
      for (let i = from; i < rows.length; i++) {
        const row = rows[i];
        if (!filters.every((f) => matches(row, f))) continue;
        if (skipped < start) {
          skipped += 1;
          continue;
        }
        selected.push(row);
        if (length > 0 && selected.length >= length) break;
      }
      if (fields.includes('*')) return answer(200, { data: selected.map((row) => ({ ...row, items: undefined })) });
      // Written out field by field: a page of thousands of rows is the stub's busiest moment (and bench:erp-sync's).
      const keys = fields.map((f) => `${JSON.stringify(f)}:`);
      const rowJson = (row: StubDoc) => `{${fields.map((f, i) => keys[i] + JSON.stringify(row[f] ?? null)).join(',')}}`;
      return answer(200, `{"data":[${selected.map(rowJson).join(',')}]}`);
    }

    const table = this.table(doctype);
    if (method === 'GET') {
      const doc = table.get(name!);
      if (!doc) {
        reply(404);
        return this.error(res, 404, 'DoesNotExistError', `${doctype} ${name} not found`);
      }
      return answer(200, { data: doc });
    }
    let body: Record<string, unknown>;
    try {
      body = bodyText ? (JSON.parse(bodyText) as Record<string, unknown>) : {};
    } catch {
      reply(417);
      return this.error(res, 417, 'ValidationError', 'invalid JSON');
    }
    if (method === 'POST' && name === undefined) {
      const newName = String(body.name ?? `${doctype.replace(/\W/g, '').slice(0, 6).toUpperCase()}-${table.size + 1}`);
      if (table.has(newName)) {
        reply(409);
        return this.error(res, 409, 'DuplicateEntryError', `${doctype} ${newName} already exists`);
      }
      return answer(200, { data: this.put(doctype, { ...body, name: newName, modified: undefined }) });
    }
    if (method === 'PUT' && name !== undefined) {
      const doc = table.get(name);
      if (!doc) {
        reply(404);
        return this.error(res, 404, 'DoesNotExistError', `${doctype} ${name} not found`);
      }
      if (body.modified !== undefined && body.modified !== doc.modified) {
        reply(417);
        return this.error(
          res,
          417,
          'TimestampMismatchError',
          `Error: Document has been modified after you have opened it (${doc.modified}, ${String(body.modified)}). Please refresh to get the latest document.`,
        );
      }
      const { modified: _m, name: _n, ...changes } = body;
      return answer(200, { data: this.update(doctype, name, changes) });
    }
    reply(405);
    return this.error(res, 405, 'PermissionError', `${method} not allowed`);
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err) => this.error(res, 500, 'InternalError', (err as Error).message));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve()));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }
}

const GROUPS = ['Raw Material', 'Reagents', 'Consumables', 'Calibration Standards', 'Services'];
const UOMS = ['Nos', 'Box', 'mL', 'L', 'g', 'kg'];
const SUPPLIER_NAMES = [
  'Sigma-Aldrich Chemie',
  'Thermo Fisher Scientific',
  'VWR International',
  'Merck Millipore',
  'Bio-Rad Laboratories',
  'Agilent Technologies',
  'Roche Diagnostics',
  'Qiagen',
  'Becton Dickinson',
  'Eppendorf',
];

export interface SeedCounts {
  suppliers: number;
  items: number;
  purchaseOrders: number;
  receipts: number;
}

/** Realistic master and transaction data: suppliers, items (every fourth needs incoming inspection), POs, receipts. */
export function seedErp(stub: ErpNextStub, counts: SeedCounts): void {
  for (let i = 1; i <= counts.suppliers; i++) {
    const base = SUPPLIER_NAMES[(i - 1) % SUPPLIER_NAMES.length];
    const name = i <= SUPPLIER_NAMES.length ? base : `${base} ${Math.ceil(i / SUPPLIER_NAMES.length)}`;
    stub.put('Supplier', {
      name,
      supplier_name: name,
      supplier_group: GROUPS[i % GROUPS.length],
      country: 'Germany',
      disabled: 0,
      on_hold: 0,
      hold_type: '',
      docstatus: 0,
    });
  }
  for (let i = 1; i <= counts.items; i++) {
    stub.put('Item', {
      name: `ITM-${pad(i, 6)}`,
      item_code: `ITM-${pad(i, 6)}`,
      item_name: `${GROUPS[i % GROUPS.length]} ${i}`,
      item_group: GROUPS[i % GROUPS.length],
      stock_uom: UOMS[i % UOMS.length],
      inspection_required_before_purchase: i % 4 === 0 ? 1 : 0,
      disabled: 0,
      docstatus: 0,
    });
  }
  const suppliers = [...stub.table('Supplier').keys()];
  const itemCode = (n: number) => `ITM-${pad(((n - 1) % Math.max(1, counts.items)) + 1, 6)}`;
  for (let i = 1; i <= counts.purchaseOrders; i++) {
    const items = [1, 2].map((idx) => ({ idx, item_code: itemCode(i * 2 + idx), qty: 10 * idx, rate: 12.5 * idx, uom: 'Nos' }));
    stub.put('Purchase Order', {
      name: `PUR-ORD-2026-${pad(i, 5)}`,
      supplier: suppliers[i % suppliers.length],
      transaction_date: '2026-11-02',
      status: 'To Receive and Bill',
      docstatus: 1,
      grand_total: items.reduce((s, r) => s + r.qty * r.rate, 0),
      currency: 'EUR',
      amended_from: null,
      items,
    });
  }
  const orders = [...stub.table('Purchase Order').values()];
  for (let i = 1; i <= counts.receipts; i++) {
    const po = orders[(i - 1) % orders.length];
    stub.put('Purchase Receipt', {
      name: `MAT-PRE-2026-${pad(i, 5)}`,
      supplier: po.supplier,
      posting_date: '2026-11-03',
      status: 'Completed',
      docstatus: 1,
      amended_from: null,
      items: (po.items as { idx: number; item_code: string; qty: number }[]).map((r) => ({
        idx: r.idx,
        item_code: r.item_code,
        qty: r.qty,
        purchase_order: po.name,
        batch_no: `B${pad(i, 5)}-${r.idx}`,
      })),
    });
  }
}
