import assert from 'node:assert/strict';
import { seedErp } from '../helpers/erpnext-stub';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { clearErpTables, count, startErpPlatform, type ErpPlatform } from './support';

describe('the ERP sync API', () => {
  let p: ErpPlatform;
  let u: Record<'ops' | 'admin' | 'tech', TestUser>;
  const db = () => testEnv().db;
  /** The run's record says it finished and the run itself has closed (the record is written a moment before). */
  const finished = (started: { syncRunId: string; workflowId: string }) =>
    waitFor(async () => {
      const run = await db()('erp_sync_runs').where({ id: started.syncRunId }).first();
      if (!run || run.state === 'running') return null;
      const { status } = await testEnv().client.workflow.getHandle(started.workflowId).describe();
      return status.name === 'RUNNING' ? null : run;
    }, `sync run ${started.syncRunId}`);

  before(async () => {
    u = await makeUsers({ ops: ['it_operator'], admin: ['admin'], tech: ['lab_technician'] });
  });
  beforeEach(async () => {
    await clearErpTables();
    p = await startErpPlatform();
    seedErp(p.stub, { suppliers: 5, items: 20, purchaseOrders: 10, receipts: 4 });
  });
  afterEach(() => p.stop());

  it('starts a sync on demand, answers 200 with the run already going, and lists runs with their counts', async () => {
    p.stub.listDelayMs = 300;
    const started = await p.api('POST', '/api/v1/erp-sync/runs', { key: u.ops.apiKey, body: {} });
    assert.equal(started.status, 202);
    assert.equal(started.body.workflowId, 'erp-sync:all');
    assert.equal(started.headers.get('location'), `/api/v1/erp-sync/runs/${started.body.syncRunId}`);
    const again = await p.api('POST', '/api/v1/erp-sync/runs', { key: u.ops.apiKey, body: {} });
    assert.deepEqual([again.status, again.body.state, again.body.syncRunId], [200, 'already_running', started.body.syncRunId]);
    assert.equal(again.headers.get('location'), `/api/v1/erp-sync/runs/${started.body.syncRunId}`);
    p.stub.listDelayMs = 0;
    await finished(started.body);
    const runs = await p.api('GET', '/api/v1/erp-sync/runs', { key: u.ops.apiKey });
    assert.equal(runs.body.items[0].id, started.body.syncRunId);
    assert.equal(runs.body.items[0].counts.items.stored, 20);
    assert.equal((await p.api('POST', '/api/v1/erp-sync/runs', { key: u.tech.apiKey, body: {} })).status, 403);
    assert.equal((await p.api('POST', '/api/v1/erp-sync/runs', { key: u.ops.apiKey, body: { entity: 'invoices' } })).status, 400);
  });

  it('names the running sync when triggered after its record says finished but before the run has closed', async () => {
    await p.stop();
    let closing!: () => void;
    const held = new Promise<void>((resolve) => (closing = resolve));
    let recorded = false;
    p = await startErpPlatform({
      wrapActivities: (a) => ({
        finishErpSyncRun: async (x) => {
          const answer = await a.finishErpSyncRun(x);
          recorded = true;
          await held;
          return answer;
        },
      }),
    });
    seedErp(p.stub, { suppliers: 2, items: 2, purchaseOrders: 0, receipts: 0 });
    const started = await p.api('POST', '/api/v1/erp-sync/runs', { key: u.ops.apiKey, body: { entity: 'items' } });
    assert.equal(started.status, 202);
    await waitFor(() => recorded, 'the run recording its end');
    assert.equal((await db()('erp_sync_runs').where({ id: started.body.syncRunId }).first()).state, 'completed');
    const again = await p.api('POST', '/api/v1/erp-sync/runs', { key: u.ops.apiKey, body: { entity: 'items' } });
    assert.deepEqual(
      [again.status, again.body.state, again.body.syncRunId, again.body.workflowId],
      [200, 'already_running', started.body.syncRunId, 'erp-sync:items'],
    );
    assert.equal(again.headers.get('location'), `/api/v1/erp-sync/runs/${started.body.syncRunId}`);
    closing();
    await finished(started.body);
  });

  it('retries a dead letter by re-fetching the record once the cause is fixed, and discards another with a reason', async () => {
    p.stub.put('Purchase Order', {
      name: 'PO-LATE',
      supplier: 'Late Supplier',
      docstatus: 1,
      items: [{ idx: 1, item_code: 'ITM-000001', qty: 1 }],
    });
    p.stub.put('Purchase Order', { name: 'PO-JUNK', supplier: 'Nobody', docstatus: 1, items: [] });
    const first = await p.api('POST', '/api/v1/erp-sync/runs', { key: u.ops.apiKey, body: {} });
    await finished(first.body);
    const letters = (await p.api('GET', '/api/v1/erp-sync/dead-letters?state=open', { key: u.ops.apiKey })).body.items;
    assert.deepEqual(letters.map((l: { erp_name: string }) => l.erp_name).sort(), ['PO-JUNK', 'PO-LATE']);
    const late = letters.find((l: { erp_name: string }) => l.erp_name === 'PO-LATE');
    const junk = letters.find((l: { erp_name: string }) => l.erp_name === 'PO-JUNK');

    // The supplier now exists in labflow: the retry re-fetches the order and stores it.
    p.stub.put('Supplier', { name: 'Late Supplier', supplier_name: 'Late Supplier' });
    await p.api('POST', '/api/v1/erp-sync/runs', { key: u.ops.apiKey, body: { entity: 'suppliers' } });
    await waitFor(async () => (await count('erp_suppliers', { name: 'Late Supplier' })) === 1, 'the supplier synced');
    await waitFor(
      async () => (await db()('erp_sync_runs').where({ scope: 'suppliers', state: 'completed' }).first()) ?? null,
      'the suppliers run',
    );
    const retry = await p.api('POST', `/api/v1/erp-sync/dead-letters/${late.id}/retry`, { key: u.ops.apiKey });
    assert.equal(retry.status, 202);
    await waitFor(async () => (await db()('erp_dead_letters').where({ id: late.id }).first()).state === 'resolved', 'the retry');
    assert.equal(await count('erp_purchase_orders', { name: 'PO-LATE' }), 1);

    assert.equal((await p.api('POST', `/api/v1/erp-sync/dead-letters/${junk.id}/discard`, { key: u.ops.apiKey, body: {} })).status, 400);
    const discarded = await p.api('POST', `/api/v1/erp-sync/dead-letters/${junk.id}/discard`, {
      key: u.ops.apiKey,
      body: { reason: 'test order, deleted in the ERP' },
    });
    assert.deepEqual([discarded.status, discarded.body.state, discarded.body.closed_by], [200, 'discarded', u.ops.username]);
    assert.equal(
      (await p.api('POST', `/api/v1/erp-sync/dead-letters/${junk.id}/discard`, { key: u.ops.apiKey, body: { reason: 'again' } })).status,
      409,
    );
    assert.equal(await count('audit_events', { action: 'erp.dead_letter_discarded', entity_id: junk.id }), 1);
  });

  it('lets an admin reset a cursor, audited, after which the next sync re-reads everything', async () => {
    const first = await p.api('POST', '/api/v1/erp-sync/runs', { key: u.ops.apiKey, body: { entity: 'items' } });
    await finished(first.body);
    assert.equal((await p.api('POST', '/api/v1/erp-sync/cursors/items/reset', { key: u.ops.apiKey, body: { reason: 'x' } })).status, 403);
    const reset = await p.api('POST', '/api/v1/erp-sync/cursors/items/reset', {
      key: u.admin.apiKey,
      body: { reason: 'ERP restored from backup' },
    });
    assert.deepEqual([reset.status, reset.body.cursor_modified], [200, null]);
    assert.equal(await count('audit_events', { action: 'erp.cursor_reset', entity_id: 'items' }), 1);
    const second = await p.api('POST', '/api/v1/erp-sync/runs', { key: u.ops.apiKey, body: { entity: 'items' } });
    const run = await finished(second.body);
    assert.equal(run.counts.items.fetched, 20);
  });

  it('reports drift per entity in a reconciliation run, by count and hash', async () => {
    const first = await p.api('POST', '/api/v1/erp-sync/runs', { key: u.ops.apiKey, body: {} });
    await finished(first.body);
    p.stub.update('Item', 'ITM-000003', { item_name: 'changed, not yet synced' });
    await db()('erp_items').where({ name: 'ITM-000007' }).delete();
    const rec = await p.api('POST', '/api/v1/erp-sync/runs', { key: u.ops.apiKey, body: { mode: 'reconcile' } });
    const run = await finished(rec.body);
    assert.equal(run.mode, 'reconcile');
    assert.deepEqual(
      [
        run.drift.items.erpCount,
        run.drift.items.labflowCount,
        run.drift.items.inSync,
        run.drift.items.sample.missing,
        run.drift.items.sample.stale,
      ],
      [20, 19, false, ['ITM-000007'], ['ITM-000003']],
    );
    assert.notEqual(run.drift.items.erpHash, run.drift.items.labflowHash);
    assert.equal(run.drift.suppliers.inSync, true);
    assert.equal(run.drift.suppliers.erpHash, run.drift.suppliers.labflowHash);
  });
});
