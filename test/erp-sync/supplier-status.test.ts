import assert from 'node:assert/strict';
import { seedErp } from '../helpers/erpnext-stub';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { clearErpTables, startErpPlatform, type ErpPlatform } from './support';

const VERDICT = 'LabFlow Supplier Verdict';

describe('supplier qualification writes the hold status to the ERP', () => {
  let p: ErpPlatform;
  let u: Record<'qa' | 'tech' | 'ops', TestUser>;
  const db = () => testEnv().db;
  const decide = (supplier: string, decision: string, key = u.qa.apiKey, reason = 'audit findings') =>
    p.api('POST', `/api/v1/suppliers/${encodeURIComponent(supplier)}/qualification/${decision}`, { key, body: { reason } });
  const projection = (supplier: string) => db()('supplier_qualifications').where({ supplier }).first();

  before(async () => {
    u = await makeUsers({ qa: ['qa_manager'], tech: ['lab_technician'], ops: ['it_operator'] });
  });
  beforeEach(async () => {
    await clearErpTables();
    p = await startErpPlatform({ timeoutMs: 1000 });
    seedErp(p.stub, { suppliers: 10, items: 4, purchaseOrders: 0, receipts: 0 });
    await p.sync({ scope: 'suppliers' });
  });
  afterEach(async () => {
    // Runs are keyed by supplier: end this test's, so the next test's worker does not inherit them.
    for (const id of await db()('supplier_qualifications').pluck('workflow_id')) {
      await testEnv()
        .client.workflow.getHandle(id)
        .terminate('test over')
        .catch(() => undefined);
    }
    await p.stop();
  });

  it('puts a suspended supplier on hold in the ERP and takes the hold off when QA approves again', async () => {
    const res = await decide('Qiagen', 'suspend');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'suspended');
    await waitFor(async () => (await projection('Qiagen'))?.erp_state === 'written', 'the ERP write');
    const supplier = p.stub.table('Supplier').get('Qiagen')!;
    assert.deepEqual([supplier.on_hold, supplier.hold_type], [1, 'All']);
    assert.equal(p.stub.table(VERDICT).size, 1);

    assert.equal((await decide('Qiagen', 'approve')).status, 200);
    await waitFor(async () => {
      const row = await projection('Qiagen');
      return row?.status === 'approved' && row.erp_state === 'written';
    }, 'the approval written');
    assert.deepEqual([p.stub.table('Supplier').get('Qiagen')!.on_hold, p.stub.table(VERDICT).size], [0, 2]);
    const audit = await db()('audit_events').where({ entity_type: 'supplier', entity_id: 'Qiagen' }).orderBy('seq').pluck('action');
    assert.deepEqual(audit, ['supplier.suspended', 'supplier.erp_status_written', 'supplier.approved', 'supplier.erp_status_written']);
  });

  it('creates the ERP record once when the first answer never comes (looks it up before retrying)', async () => {
    p.stub.fault({ method: 'POST', doctype: VERDICT }, { kind: 'applyThenHang', ms: 3000 });
    assert.equal((await decide('Eppendorf', 'disqualify')).status, 200);
    await waitFor(async () => (await projection('Eppendorf'))?.erp_state === 'written', 'the ERP write after the timeout', 30_000);
    assert.equal(p.stub.table(VERDICT).size, 1, 'one verdict, not two');
    assert.equal(p.stub.count({ method: 'POST', doctype: VERDICT }), 1, 'the create was not repeated');
    assert.equal(p.stub.count({ method: 'GET', doctype: VERDICT }), 1, 'it was looked up instead');
    assert.match((await projection('Eppendorf')).erp_detail, /verdict found/);
    assert.equal(p.stub.table('Supplier').get('Eppendorf')!.on_hold, 1);
  });

  it('treats a 409 on the create as already done, and re-reads the supplier when someone saved it in between', async () => {
    p.stub.fault({ method: 'POST', doctype: VERDICT }, { kind: 'applyThenHang', ms: 3000 });
    p.stub.fault(
      { method: 'GET', doctype: VERDICT },
      { kind: 'status', status: 404, excType: 'DoesNotExistError', message: 'not yet visible' },
    );
    p.stub.fault(
      { method: 'PUT', doctype: 'Supplier' },
      { kind: 'status', status: 417, excType: 'TimestampMismatchError', message: 'Document has been modified after you have opened it' },
    );
    assert.equal((await decide('Qiagen', 'suspend')).status, 200);
    await waitFor(async () => (await projection('Qiagen'))?.erp_state === 'written', 'the ERP write', 30_000);
    assert.equal(p.stub.table(VERDICT).size, 1);
    assert.match((await projection('Qiagen')).erp_detail, /verdict duplicate, hold updated .*1 conflict/);
  });

  it('refuses decisions from people without the QA role, without a reason, or that do not fit the state', async () => {
    assert.equal((await decide('Qiagen', 'approve', u.tech.apiKey)).status, 403);
    assert.equal((await decide('Qiagen', 'approve', u.qa.apiKey, ' ')).status, 400);
    assert.equal((await decide('Nobody Ltd', 'approve')).status, 404);
    assert.equal((await decide('Qiagen', 'approve')).status, 200);
    const again = await decide('Qiagen', 'approve');
    assert.equal(again.status, 409);
    assert.equal(again.body.type, 'urn:labflow:problem:wrong-stage');
    assert.equal((await decide('Qiagen', 'disqualify')).status, 200);
    assert.equal((await decide('Qiagen', 'approve')).status, 409);
  });

  it('dead-letters a write the ERP refuses, and writes it when an operator retries', async () => {
    p.stub.fault(
      { method: 'PUT', doctype: 'Supplier', name: 'Qiagen' },
      { kind: 'status', status: 417, excType: 'ValidationError', message: 'Supplier is blocked by accounts' },
    );
    assert.equal((await decide('Qiagen', 'suspend')).status, 200);
    await waitFor(async () => (await projection('Qiagen'))?.erp_state === 'refused', 'the refusal');
    const letters = await p.api('GET', '/api/v1/erp-sync/dead-letters?state=open', { key: u.ops.apiKey });
    assert.equal(letters.body.items.length, 1);
    assert.equal(letters.body.items[0].direction, 'outbound');
    assert.match(letters.body.items[0].reason, /Supplier is blocked by accounts/);
    const retry = await p.api('POST', `/api/v1/erp-sync/dead-letters/${letters.body.items[0].id}/retry`, { key: u.ops.apiKey });
    assert.equal(retry.status, 202);
    await waitFor(async () => (await projection('Qiagen'))?.erp_state === 'written', 'the retried write');
    assert.equal((await db()('erp_dead_letters').where({ id: letters.body.items[0].id }).first()).state, 'resolved');
  });
});
