import assert from 'node:assert/strict';
import { processDecisionSignal, supplierQualificationQuery } from '../../common/supplier-qualification';
import { seedErp } from '../helpers/erpnext-stub';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { act, createCapa, inHours, sign, toImplementation, waitForStage } from '../capa/support';
import { clearErpTables, startErpPlatform, type ErpPlatform } from './support';

const VERDICT = 'LabFlow Supplier Verdict';
// Suppliers no other test decides on: qualification runs are keyed by supplier on the shared dev server.
const SUSPENDED = 'Merck Millipore';
const DISQUALIFIED = 'Roche Diagnostics';

describe("a supplier CAPA's closure decides on the supplier, and the ERP gets its hold status", () => {
  let p: ErpPlatform;
  let u: Record<'qa' | 'owner' | 'director', TestUser>;
  const db = () => testEnv().db;
  const started: string[] = [];

  /** A CAPA naming these sources, taken to a passed effectiveness check: it waits for signed closure. */
  async function readyToClose(sources: { type: string; id: string }[]) {
    const { number, workflowId } = await createCapa(p, u.qa, { title: 'Contaminated buffer lots', sources });
    started.push(workflowId);
    await toImplementation(p, u, number, [
      { type: 'corrective', description: 'Quarantine the lots', owner: { user: u.owner.username }, dueAt: inHours(48) },
    ]);
    await act(p, u.owner, number, '/actions/A1/complete', { evidence: 'Lots 4711-4713 quarantined' });
    await waitForStage(p, u.qa, number, 'effectiveness_review');
    const passed = await act(p, u.director, number, '/effectiveness', {
      results: [{ criterionId: 'C1', met: true, evidence: 'No contaminated lot since' }],
    });
    return { number, hash: passed.closureContentHash as string };
  }

  before(async () => {
    u = await makeUsers({ qa: ['qa_manager'], owner: ['lab_technician'], director: ['lab_director'] });
  });
  beforeEach(async () => {
    await clearErpTables();
    p = await startErpPlatform();
    seedErp(p.stub, { suppliers: 10, items: 4, purchaseOrders: 0, receipts: 0 });
    await p.sync({ scope: 'suppliers' });
  });
  afterEach(async () => {
    const ids = [...started.splice(0), ...(await db()('supplier_qualifications').pluck('workflow_id'))];
    for (const id of ids) {
      await testEnv()
        .client.workflow.getHandle(id)
        .terminate('test over')
        .catch(() => undefined);
    }
    await p.stop();
  });

  it('suspends the supplier through its qualification run when QA closes the CAPA with that verdict, once', async () => {
    const { number, hash } = await readyToClose([{ type: 'supplier', id: SUSPENDED }]);
    const closed = await act(p, u.qa, number, '/close', {
      signature: sign(u.qa, hash, 'responsibility'),
      comment: 'Supplier caused the contamination',
      supplierAction: 'suspend',
      suppliers: [SUSPENDED],
    });
    assert.deepEqual([closed.stage, closed.closure.supplierAction], ['closed', 'suspend']);

    await waitFor(async () => {
      const q = await db()('supplier_qualifications').where({ supplier: SUSPENDED }).first();
      return q?.status === 'suspended' && q.erp_state === 'written' ? q : null;
    }, 'the hold written to the ERP');
    const supplier = p.stub.table('Supplier').get(SUSPENDED)!;
    assert.deepEqual([supplier.on_hold, supplier.hold_type], [1, 'All']);
    assert.equal(p.stub.table(VERDICT).size, 1);

    const handle = testEnv().client.workflow.getHandle(`supplier-qualification:${SUSPENDED}`);
    const via = `capa:${number}:closure:1`;
    const state = await handle.query(supplierQualificationQuery);
    assert.deepEqual(
      state.decisions.map((d) => [d.decision, d.by, d.via]),
      [['suspend', u.qa.username, via]],
    );
    assert.match(state.decisions[0].reason, new RegExp(`CAPA ${number} .* closed: Supplier caused the contamination`));
    const audit = await db()('audit_events').where({ entity_type: 'supplier', entity_id: SUSPENDED, action: 'supplier.suspended' }).first();
    assert.deepEqual([audit.actor, audit.details.via], [u.qa.username, via]);
    const capaClosed = await db()('audit_events').where({ entity_type: 'capa', entity_id: number, action: 'capa.closed' }).first();
    assert.deepEqual([capaClosed.details.supplierAction, capaClosed.details.suppliers], ['suspend', [SUSPENDED]]);

    // The same decision delivered again (a retried signal) changes nothing.
    await handle.signal(processDecisionSignal, { decision: 'suspend', actor: u.qa.actor, reason: 'again', via });
    const after = await handle.query(supplierQualificationQuery);
    assert.equal(after.decisions.length, 1);
    assert.equal(p.stub.table(VERDICT).size, 1);
  });

  it('refuses a verdict the supplier cannot take, on a supplier labflow does not know, or on a CAPA naming no supplier', async () => {
    // Disqualified by QA directly: a CAPA cannot approve it any more.
    assert.equal(
      (
        await p.api('POST', `/api/v1/suppliers/${encodeURIComponent(DISQUALIFIED)}/qualification/disqualify`, {
          key: u.qa.apiKey,
          body: { reason: 'audit failed' },
        })
      ).status,
      200,
    );
    const { number, hash } = await readyToClose([
      { type: 'supplier', id: DISQUALIFIED },
      { type: 'audit_finding', id: 'AF-2026-14' },
    ]);
    const close = (supplierAction: string, status: number) =>
      act(p, u.qa, number, '/close', { signature: sign(u.qa, hash, 'responsibility'), supplierAction, suppliers: [DISQUALIFIED] }, status);
    const refused = await close('approve', 409);
    assert.equal(refused.type, 'urn:labflow:problem:run-finished');
    await close('banish', 400);
    // Disqualifying again is no change; the CAPA closes with it.
    const closed = await close('disqualify', 200);
    assert.equal(closed.closure.supplierAction, 'disqualify');

    const unknown = await createCapa(p, u.qa, { title: 'Unknown supplier', sources: [{ type: 'supplier', id: 'Nobody GmbH' }] });
    started.push(unknown.workflowId);
    const nobody = await act(
      p,
      u.qa,
      unknown.number,
      '/close',
      { signature: sign(u.qa, '0'.repeat(64)), supplierAction: 'suspend', suppliers: ['Nobody GmbH'] },
      422,
    );
    assert.equal(nobody.type, 'urn:labflow:problem:unknown-supplier');

    const plain = await readyToClose([{ type: 'complaint', id: 'CMP-77' }]);
    const noSupplier = await act(
      p,
      u.qa,
      plain.number,
      '/close',
      { signature: sign(u.qa, plain.hash, 'responsibility'), supplierAction: 'suspend', suppliers: [SUSPENDED] },
      422,
    );
    assert.match(noSupplier.detail, /does not name Merck Millipore as a supplier source/);
  });
});
