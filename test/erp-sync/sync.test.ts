import assert from 'node:assert/strict';
import { WorkflowFailedError } from '@temporalio/client';
import { sampleStateQuery } from '../../common/sample-intake';
import { storePage } from '../../db/erp-sync';
import { seedErp } from '../helpers/erpnext-stub';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { clearErpTables, count, startErpPlatform, type ErpPlatform } from './support';

const SEED = { suppliers: 12, items: 40, purchaseOrders: 30, receipts: 20 };

describe('the ERP sync', () => {
  let p: ErpPlatform;
  let u: Record<'ops' | 'admin' | 'tech', TestUser>;
  const db = () => testEnv().db;
  const run = (id: string) => db()('erp_sync_runs').where({ id }).first();

  before(async () => {
    u = await makeUsers({ ops: ['it_operator'], admin: ['admin'], tech: ['lab_technician'] });
  });
  beforeEach(async () => {
    await clearErpTables();
    p = await startErpPlatform();
    seedErp(p.stub, SEED);
  });
  afterEach(async () => {
    // Received goods started sample-intake runs on this test's task queue: end them with the test.
    for (const id of await db()('incoming_inspection_hooks').whereNotNull('intake_workflow_id').pluck('intake_workflow_id')) {
      await testEnv()
        .client.workflow.getHandle(id)
        .terminate('test over')
        .catch(() => undefined);
    }
    await p.stop();
  });

  it('stores every supplier, item, purchase order with its lines and receipt on the first sync, and leaves inspection hooks', async () => {
    const result = await p.sync({});
    assert.equal(result.state, 'completed');
    assert.equal(await count('erp_suppliers'), SEED.suppliers);
    assert.equal(await count('erp_items'), SEED.items);
    assert.equal(await count('erp_purchase_orders'), SEED.purchaseOrders);
    assert.equal(await count('erp_purchase_order_items'), SEED.purchaseOrders * 2);
    assert.equal(await count('erp_purchase_receipts'), SEED.receipts);
    const r = await run(result.syncRunId);
    assert.equal(r.state, 'completed');
    assert.equal(r.counts.items.stored, SEED.items);
    // `>=` on the cursor re-reads its row each page; it is dropped, so each row is counted once.
    assert.equal(r.counts.items.fetched, SEED.items);
    // Every fourth item needs inspection: each received line of one leaves a pending hook.
    const expectedHooks = Number(
      (
        await db().raw(
          `select count(*) n from erp_purchase_receipt_items ri join erp_items i on i.name = ri.item_code where i.inspection_required`,
        )
      ).rows[0].n,
    );
    assert.ok(expectedHooks > 0);
    assert.equal(await count('incoming_inspection_hooks'), expectedHooks);
    // The cursor is the last row, as the ERP wrote it; timestamps are read in the site's time zone.
    const last = [...p.stub.table('Item').values()].sort((a, b) => (a.modified < b.modified ? -1 : 1)).at(-1)!;
    const cursor = await db()('erp_sync_cursors').where({ entity: 'items' }).first();
    assert.deepEqual([cursor.cursor_modified, cursor.cursor_name], [last.modified, last.name]);
    const item = await db()('erp_items').where({ name: last.name }).first();
    const local = last.modified.replace(' ', 'T').slice(0, 23);
    assert.equal(new Date(item.erp_modified_at).getTime(), new Date(`${local}+01:00`).getTime()); // Berlin in November
  });

  it('starts one incoming-inspection sample run per received line that needs inspection, once, and consumes its hook', async () => {
    const first = await p.sync({});
    const hooks = await db()('incoming_inspection_hooks as h')
      .join('samples as s', 's.id', 'h.sample_id')
      .orderBy(['h.purchase_receipt', 'h.idx'])
      .select(
        'h.purchase_receipt',
        'h.idx',
        'h.state',
        'h.intake_workflow_id',
        's.accession',
        's.sample_type',
        's.source',
        's.external_id',
      );
    assert.ok(hooks.length > 0);
    assert.equal(hooks.length, await count('incoming_inspection_hooks'), 'every hook has its sample');
    for (const h of hooks) {
      assert.deepEqual(
        [h.state, h.sample_type, h.source, h.external_id, h.intake_workflow_id],
        ['started', 'INCOMING', 'erp', `${h.purchase_receipt}:${h.idx}`, `sample-intake:${h.accession}`],
      );
    }
    const sample = await testEnv().client.workflow.getHandle(hooks[0].intake_workflow_id).query(sampleStateQuery);
    assert.deepEqual([sample.state, sample.sampleType, sample.hasOrder], ['expected', 'INCOMING', true]);
    assert.deepEqual([...sample.requestedTests].sort(), ['IQC_COA', 'IQC_ID']);
    const row = await db()('samples').where({ accession: hooks[0].accession }).first();
    assert.deepEqual([row.patient_name, row.patient_mrn, row.collected_at], [null, null, null], 'no patient, no collection');
    assert.equal((await run(first.syncRunId)).counts.purchase_receipts.inspectionSamples, hooks.length);

    // Nothing new: no sample twice. A new receipt of an item that needs inspection: its line, and only it.
    const again = await p.sync({});
    assert.equal((await run(again.syncRunId)).counts.purchase_receipts, undefined);
    assert.equal(await count('incoming_inspection_hooks'), hooks.length);
    p.stub.put('Purchase Receipt', {
      name: 'MAT-PRE-2026-09001',
      supplier: 'Qiagen',
      docstatus: 1,
      status: 'Completed',
      items: [
        { idx: 1, item_code: 'ITM-000004', qty: 2, batch_no: 'LOT-4711' },
        { idx: 2, item_code: 'ITM-000005', qty: 1, batch_no: 'LOT-4712' },
      ],
    });
    const third = await p.sync({ scope: 'purchase_receipts' });
    assert.equal((await run(third.syncRunId)).counts.purchase_receipts.inspectionSamples, 1, 'ITM-000004 needs inspection, ITM-000005 not');
    const added = await db()('incoming_inspection_hooks').where({ purchase_receipt: 'MAT-PRE-2026-09001' });
    assert.deepEqual(
      added.map((h) => [h.idx, h.batch_no, h.state]),
      [[1, 'LOT-4711', 'started']],
    );

    // In the lab, the retained sample is identified by its material: item code and lot on the label.
    const { accession } = await db()('samples').where({ id: added[0].sample_id }).first('accession');
    const act = async (action: string, body?: unknown) => {
      const res = await p.api('POST', `/api/v1/samples/${accession}/${action}`, { key: u.tech.apiKey, body });
      assert.equal(res.status, 200, `${action}: ${JSON.stringify(res.body)}`);
      return res.body;
    };
    await act('receive', { location: 'Goods-in QC', temperatureC: 21, collectedAt: new Date(Date.now() - 3_600_000).toISOString() });
    const inspected = await act('inspect', {
      identifiers: [
        { type: 'item', value: 'ITM-000004' },
        { type: 'lot', value: 'LOT-4711' },
      ],
      container: 'retain_container',
      preservative: 'none',
      volumeMl: 0,
      temperatureC: 21,
      hemolyzed: false,
      clotted: false,
    });
    assert.equal(inspected.inspection.passed, true, JSON.stringify(inspected.inspection));
    assert.equal((await act('accept')).state, 'accepted');
  });

  it("reads `modified` in the site's time zone as Postgres does, also in the hours daylight saving skips or repeats", async () => {
    const local = [
      '2026-03-29 01:59:59.999999',
      '2026-03-29 02:30:00.000001', // skipped in Berlin
      '2026-03-29 03:00:00.000000',
      '2026-10-25 02:30:00.000002', // repeated in Berlin
      '2026-10-25 03:30:00.000003',
    ];
    for (const [i, modified] of local.entries()) p.stub.put('Item', { name: `DST-${i}`, item_name: 'Buffer', stock_uom: 'Nos', modified });
    await p.sync({ scope: 'items' });
    const { rows } = await db().raw(
      `select name, erp_modified_at = erp_modified::timestamp at time zone 'Europe/Berlin' as same from erp_items where name like 'DST-%'`,
    );
    assert.equal(rows.length, local.length);
    assert.deepEqual(
      rows.filter((r: { same: boolean }) => !r.same),
      [],
    );
  });

  it('stores a page whose rows were stored by someone else after the page was probed, the slower way', async () => {
    await db()('erp_sync_runs').insert({ id: 'probe-test', workflow_id: 'w', scope: 'items', mode: 'incremental', requested_by: 'test' });
    const item = (name: string, modified: string, item_name: string) => ({
      name,
      modified,
      docstatus: 0 as const,
      fields: { item_name, item_group: 'Reagents', stock_uom: 'Nos', inspection_required: false, disabled: false },
    });
    const page = (records: ReturnType<typeof item>[], known: Set<string>) =>
      storePage(db(), {
        entity: 'items',
        syncRunId: 'probe-test',
        records,
        refused: [],
        last: { modified: records.at(-1)!.modified, name: records.at(-1)!.name },
        timeZone: 'Europe/Berlin',
        auditKey: `probe-test:${records.at(-1)!.name}`,
        known,
      });
    await page([item('LATE-1', '2026-11-02 09:00:00.000001', 'first')], new Set());
    // Probed before LATE-1 was stored: the COPY meets its key and the whole page is upserted instead.
    const result = await page(
      [item('LATE-1', '2026-11-02 09:00:00.000002', 'second'), item('LATE-2', '2026-11-02 09:00:00.000003', 'new')],
      new Set(),
    );
    assert.equal(result.stored, 2);
    const rows = await db()('erp_items').whereIn('name', ['LATE-1', 'LATE-2']).orderBy('name');
    assert.deepEqual(
      rows.map((r) => [r.name, r.item_name, r.erp_modified]),
      [
        ['LATE-1', 'second', '2026-11-02 09:00:00.000002'],
        ['LATE-2', 'new', '2026-11-02 09:00:00.000003'],
      ],
    );
  });

  it('fetches only what changed since the cursor, applies amendments, cancellations and deletions', async () => {
    await p.sync({});
    const listsBefore = p.stub.count({ doctype: 'Supplier' });
    p.stub.update('Supplier', 'Qiagen', { supplier_group: 'Services', on_hold: 1, hold_type: 'All' });
    const amended = p.stub.amend('Purchase Order', 'PUR-ORD-2026-00004', { grand_total: 999 });
    p.stub.update('Purchase Order', 'PUR-ORD-2026-00005', { docstatus: 2, status: 'Cancelled' });
    p.stub.delete('Item', 'ITM-000040');
    const result = await p.sync({});
    const r = await run(result.syncRunId);
    assert.equal(r.counts.suppliers.fetched, 1);
    assert.equal(r.counts.purchase_orders.fetched, 3);
    assert.equal(r.counts.deletions.deleted, 1);
    assert.equal(r.counts.items, undefined, 'no item changed');
    assert.equal(p.stub.count({ doctype: 'Supplier' }) - listsBefore, 1, 'one short page of suppliers');
    assert.equal((await db()('erp_suppliers').where({ name: 'Qiagen' }).first()).on_hold, true);
    const original = await db()('erp_purchase_orders').where({ name: 'PUR-ORD-2026-00004' }).first();
    assert.deepEqual([original.docstatus, original.superseded_by], [2, amended.name]);
    assert.equal(Number((await db()('erp_purchase_orders').where({ name: amended.name }).first()).grand_total), 999);
    assert.equal((await db()('erp_purchase_orders').where({ name: 'PUR-ORD-2026-00005' }).first()).status, 'Cancelled');
    assert.ok((await db()('erp_items').where({ name: 'ITM-000040' }).first()).deleted_at);
  });

  it('waits out a burst of 429s with Retry-After and loses nothing', async () => {
    p.stub.fault(
      { doctype: 'Item', list: true, after: 1 },
      { kind: 'status', status: 429, excType: 'TooManyRequestsError', message: 'rate limited', retryAfter: 1 },
      3,
    );
    const result = await p.sync({ scope: 'items' });
    assert.equal(result.state, 'completed');
    assert.equal(p.stub.count({ doctype: 'Item', status: 429 }), 3);
    assert.equal(await count('erp_items'), SEED.items);
    assert.equal((await run(result.syncRunId)).counts.items.stored, SEED.items);
  });

  it('resumes from the stored cursor after a 5xx in the middle of the pages, fetching no stored page twice', async () => {
    p.stub.fault(
      { doctype: 'Item', list: true, after: 2 },
      { kind: 'status', status: 502, excType: 'BadGateway', message: 'upstream down' },
      2,
    );
    const result = await p.sync({ scope: 'items' });
    assert.equal(await count('erp_items'), SEED.items);
    const r = await run(result.syncRunId);
    assert.equal(p.stub.count({ doctype: 'Item', status: 502 }), 2);
    assert.deepEqual([r.counts.items.fetched, r.counts.items.stored], [SEED.items, SEED.items]);
    const audited = await db()('audit_events')
      .where({ entity_type: 'erp_sync', entity_id: 'items', action: 'erp.page_stored' })
      .whereRaw(`details->>'syncRunId' = ?`, [result.syncRunId]);
    assert.equal(
      audited.reduce((n, e) => n + e.details.stored, 0),
      SEED.items,
      'each page is recorded once',
    );
  });

  it('misses nothing when rows change while it pages (a page shifts under it)', async () => {
    p.stub.onList = (doctype, _q, n) => {
      if (doctype !== 'Item' || n !== 2) return;
      // Concurrent writes between page 1 and 2: an already-read row changes, a new one appears, one is deleted.
      p.stub.update('Item', 'ITM-000001', { item_name: 'Changed during sync' });
      p.stub.put('Item', { name: 'ITM-900001', item_name: 'Created during sync', stock_uom: 'Nos', item_group: 'Reagents' });
    };
    await p.sync({ scope: 'items' });
    assert.equal(await count('erp_items'), SEED.items + 1);
    assert.equal((await db()('erp_items').where({ name: 'ITM-000001' }).first()).item_name, 'Changed during sync');
  });

  it('walks rows that share one `modified` across page boundaries without losing or repeating any', async () => {
    const same = p.stub.tick();
    for (let i = 1; i <= 35; i++)
      p.stub.put('Item', { name: `TIE-${String(i).padStart(3, '0')}`, item_name: `Tie ${i}`, stock_uom: 'Nos', modified: same });
    const result = await p.sync({ scope: 'items' });
    assert.equal(await count('erp_items'), SEED.items + 35);
    assert.equal((await run(result.syncRunId)).counts.items.stored, SEED.items + 35);
  });

  it('fails the run without moving the cursor when the ERP revokes the token, and alerts IT operators and admins once per run', async () => {
    await p.sync({ scope: 'suppliers' });
    const before = await db()('erp_sync_cursors').where({ entity: 'suppliers' }).first();
    p.stub.update('Supplier', 'Qiagen', { country: 'Netherlands' });
    p.stub.revoked = true;
    const mailsBefore = testEnv().mails.length;
    await assert.rejects(p.sync({ scope: 'suppliers' }), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.match(String(err.cause?.message), /401/);
      return true;
    });
    const failed = await db()('erp_sync_runs').where({ state: 'failed' }).first();
    assert.match(failed.error, /refused labflow's API key \(401/);
    assert.deepEqual(await db()('erp_sync_cursors').where({ entity: 'suppliers' }).first(), before);

    // In-app and by email, to IT operators and admins, not to others; with the run's reason and what to do.
    const alerted = (key: string) => db()('notifications').where({ idempotency_key: key }).pluck('user_id');
    const key = `erp-auth-refused:sync:${failed.id}`;
    const recipients = await alerted(key);
    assert.ok(recipients.includes(u.ops.actor.userId) && recipients.includes(u.admin.actor.userId));
    assert.ok(!recipients.includes(u.tech.actor.userId));
    const note = await db()('notifications').where({ idempotency_key: key, user_id: u.ops.actor.userId }).first();
    assert.equal(note.kind, 'erp.auth_refused');
    assert.match(note.body, /refused labflow's API key \(401[\s\S]*ERP_API_KEY/);
    const mails = await waitFor(() => {
      const sent = testEnv()
        .mails.slice(mailsBefore)
        .filter((m) => m.subject?.includes("The ERP refused labflow's API key"));
      const to = sent.flatMap((m) => m.to);
      return to.includes(`${u.ops.username}@lab.test`) && to.includes(`${u.admin.username}@lab.test`) ? sent : null;
    }, 'the alert emails');
    assert.ok(!mails.flatMap((m) => m.to).includes(`${u.tech.username}@lab.test`));
    assert.equal(await count('audit_events', { action: 'erp.auth_refused', entity_id: key }), 1);

    // A retried finish of the same run alerts nobody again; the next run that fails is alerted on its own.
    const retried = await p.activities.finishErpSyncRun({
      syncRunId: failed.id,
      state: 'failed',
      error: failed.error,
      errorType: 'ErpAuthFailed',
    });
    assert.deepEqual(retried.outboxIds, []);
    assert.equal((await alerted(key)).length, recipients.length);
    assert.equal(await count('notifications', { idempotency_key: key, user_id: u.ops.actor.userId }), 1);
    await assert.rejects(p.sync({ scope: 'suppliers' }));
    const second = await db()('erp_sync_runs').where({ state: 'failed' }).whereNot({ id: failed.id }).first();
    assert.ok((await alerted(`erp-auth-refused:sync:${second.id}`)).includes(u.ops.actor.userId));
  });

  it('dead-letters the one row the ERP answers 417 for and the rows labflow cannot link, and stores the rest', async () => {
    p.stub.fault(
      { method: 'GET', doctype: 'Purchase Order', name: 'PUR-ORD-2026-00007' },
      { kind: 'status', status: 417, excType: 'ValidationError', message: 'Row #1: Item ITM-000015 is disabled' },
    );
    p.stub.put('Purchase Order', {
      name: 'PUR-ORD-2026-09999',
      supplier: 'Unknown GmbH',
      docstatus: 1,
      status: 'To Receive',
      items: [{ idx: 1, item_code: 'ITM-000001', qty: 1, rate: 1 }],
    });
    const result = await p.sync({});
    assert.equal(result.state, 'completed');
    assert.equal(await count('erp_purchase_orders'), SEED.purchaseOrders - 1);
    const letters = await db()('erp_dead_letters').orderBy('erp_name');
    assert.deepEqual(
      letters.map((l) => [l.entity, l.erp_name, l.state, l.error_type]),
      [
        ['purchase_orders', 'PUR-ORD-2026-00007', 'open', 'ValidationError'],
        ['purchase_orders', 'PUR-ORD-2026-09999', 'open', 'MissingLink'],
      ],
    );
    assert.match(letters[0].reason, /417 Row #1: Item ITM-000015 is disabled/);
    assert.match(letters[1].reason, /missing linked record: Supplier Unknown GmbH/);
  });
});
