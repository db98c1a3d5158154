import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { FailureType } from '../../common/failures';
import {
  DECISION_UPDATES,
  SUPPLIER_ACTIONS,
  processDecisionSignal,
  supplierGrantedArgs,
  supplierQualificationQuery,
  type SupplierDecision,
} from '../../common/supplier-qualification';
import { issueGrant } from '../../db/grants';
import type { supplierQualificationWorkflow } from '../../workflows';
import { seedErp } from '../helpers/erpnext-stub';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { act, createCapa, inHours, sign, toImplementation, waitForStage } from '../capa/support';
import { clearErpTables, startErpPlatform, type ErpPlatform } from './support';

const VERDICT = 'LabFlow Supplier Verdict';
// Suppliers no other test decides on: qualification runs are keyed by supplier on the shared dev server.
const FORGED = 'Becton Dickinson';
const NAMED = 'Agilent Technologies';
const NOT_NAMED = 'Bio-Rad Laboratories';

/**
 * Supplier qualification's recording Updates and its processDecision signal sent straight to Temporal: refused,
 * nothing recorded, nothing written to the ERP, a security event and one alert to IT; the API's decision then goes
 * through. A CAPA's verdict reaches exactly the suppliers QA signed it for.
 */
describe('forged supplier-qualification actions sent straight to Temporal', () => {
  let p: ErpPlatform;
  let u: Record<'qa' | 'qa2' | 'owner' | 'director' | 'ivan', TestUser>;
  const db = () => testEnv().db;
  const workflowId = (supplier: string) => `supplier-qualification:${supplier}`;

  before(async () => {
    u = await makeUsers({
      qa: ['qa_manager'],
      qa2: ['qa_manager'],
      owner: ['lab_technician'],
      director: ['lab_director'],
      ivan: ['it_operator'],
    });
    await clearErpTables();
    p = await startErpPlatform();
    seedErp(p.stub, { suppliers: 10, items: 4, purchaseOrders: 0, receipts: 0 });
    await p.sync({ scope: 'suppliers' });
  });
  after(async () => {
    for (const supplier of [FORGED, NAMED, NOT_NAMED]) {
      await testEnv()
        .client.workflow.getHandle(workflowId(supplier))
        .terminate('test over')
        .catch(() => undefined);
    }
    await p.stop();
  });

  const issue = (who: TestUser, supplier: string, decision: SupplierDecision, reason: string) =>
    issueGrant(db(), {
      userId: who.actor.userId,
      workflowId: workflowId(supplier),
      action: SUPPLIER_ACTIONS[decision],
      args: supplierGrantedArgs({ reason }),
      ttlMs: 300_000,
    });
  const securityEvents = (supplier: string) =>
    db()('audit_events')
      .where({ action: 'security.grant_refused', entity_type: 'supplier', entity_id: supplier })
      .orderBy('seq')
      .select('details');
  const recorded = async (supplier: string) => ({
    qualification: (await db()('supplier_qualifications').where({ supplier }).first()) ?? null,
    audit: await db()('audit_events')
      .where({ entity_type: 'supplier', entity_id: supplier })
      .whereNot('action', 'security.grant_refused')
      .pluck('action'),
    verdicts: p.stub.table(VERDICT).size,
    onHold: p.stub.table('Supplier').get(supplier)?.on_hold,
  });
  const alerts = (supplier: string) =>
    testEnv().mails.filter((m) => m.to.some((to) => to.includes(u.ivan.username)) && (m.subject ?? '').includes(supplier));

  it('refuses forged approve, suspend and disqualify Updates and a forged processDecision; the API then decides', async () => {
    const run = await testEnv().client.workflow.start<typeof supplierQualificationWorkflow>('supplierQualificationWorkflow', {
      workflowId: workflowId(FORGED),
      taskQueue: p.taskQueue,
      args: [{ supplier: FORGED }],
    });
    const before = await recorded(FORGED);
    let byActivity = 0;
    for (const decision of ['approve', 'suspend', 'disqualify'] as const) {
      const used = await issue(u.qa, FORGED, decision, 'audit');
      await db()('action_grants').where({ id: used }).update({ consumed_at: db().fn.now(), consumed_by: 'an-earlier-activity' });
      const cases: { name: string; grant: unknown; byValidator?: boolean }[] = [
        { name: 'no grant', grant: undefined, byValidator: true },
        { name: 'a made-up grant', grant: randomBytes(32).toString('base64url') },
        { name: "another user's grant", grant: await issue(u.qa2, FORGED, decision, 'audit') },
        { name: 'a grant for another reason', grant: await issue(u.qa, FORGED, decision, 'something else') },
        { name: 'a grant for another decision', grant: await issue(u.qa, FORGED, decision === 'approve' ? 'suspend' : 'approve', 'audit') },
        { name: 'a used grant', grant: used },
      ];
      for (const forged of cases) {
        const refused = await run
          .executeUpdate(DECISION_UPDATES[decision], { args: [{ actor: u.qa.actor, grant: forged.grant as string, reason: 'audit' }] })
          .then(
            () => undefined,
            (err: unknown) => err,
          );
        assert.ok(refused instanceof WorkflowUpdateFailedError, `${decision} with ${forged.name}: ${String(refused)}`);
        assert.ok(refused.cause instanceof ApplicationFailure);
        assert.equal(refused.cause.type, FailureType.GrantRefused, `${decision} with ${forged.name}`);
        if (!forged.byValidator) byActivity += 1;
        assert.deepEqual(await recorded(FORGED), before, `${decision} with ${forged.name} recorded something`);
      }
    }
    assert.deepEqual((await run.query(supplierQualificationQuery)).decisions, [], 'the run gave back every refused decision');

    // A CAPA closure Postgres does not hold: the verdict does not reach the ERP.
    await run.signal(processDecisionSignal, {
      decision: 'disqualify',
      actor: u.qa.actor,
      reason: 'forged',
      via: 'capa:CAPA-2026-9999:closure:1',
    });
    await waitFor(async () => (await securityEvents(FORGED)).length === byActivity + 1 || null, 'the forged signal refused');
    assert.equal((await securityEvents(FORGED)).at(-1)?.details.attempted, 'supplier.process_decision');
    assert.deepEqual(await recorded(FORGED), before, 'nothing recorded and nothing written to the ERP');
    assert.equal((await run.query(supplierQualificationQuery)).status, 'pending');
    assert.equal((await run.describe()).status.name, 'RUNNING');
    assert.equal(alerts(FORGED).length, 1, 'IT operators are alerted once for the run');

    const res = await p.api('POST', `/api/v1/suppliers/${encodeURIComponent(FORGED)}/qualification/suspend`, {
      key: u.qa.apiKey,
      body: { reason: 'audit' },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    await waitFor(
      async () => (await db()('supplier_qualifications').where({ supplier: FORGED }).first())?.erp_state === 'written' || null,
      'the ERP write',
    );
    const audit = await db()('audit_events').where({ entity_type: 'supplier', entity_id: FORGED, action: 'supplier.suspended' }).first();
    assert.equal(audit.actor_id, u.qa.actor.userId);
    assert.ok(audit.details.grant, 'the record names the grant it consumed');
  });

  it("applies a CAPA's verdict to exactly the suppliers QA named, and refuses a supplier the CAPA does not name", async () => {
    const { number, workflowId: capaRun } = await createCapa(p, u.qa, {
      title: 'Two suppliers, one at fault',
      sources: [
        { type: 'supplier', id: NAMED },
        { type: 'supplier', id: NOT_NAMED },
      ],
      allowDuplicate: true,
    });
    await toImplementation(p, u, number, [
      { type: 'corrective', description: 'Quarantine', owner: { user: u.owner.username }, dueAt: inHours(48) },
    ]);
    await act(p, u.owner, number, '/actions/A1/complete', { evidence: 'done' });
    await waitForStage(p, u.qa, number, 'effectiveness_review');
    const passed = await act(p, u.director, number, '/effectiveness', { results: [{ criterionId: 'C1', met: true, evidence: 'ok' }] });
    const signature = sign(u.qa, passed.closureContentHash, 'responsibility');
    const unnamed = await act(p, u.qa, number, '/close', { signature, supplierAction: 'suspend', suppliers: ['Qiagen'] }, 422);
    assert.equal(unnamed.type, 'urn:labflow:problem:not-a-capa-supplier');
    await act(p, u.qa, number, '/close', { signature, supplierAction: 'suspend' }, 400);
    const closed = await act(p, u.qa, number, '/close', { signature, supplierAction: 'suspend', suppliers: [NAMED] });
    assert.deepEqual([closed.stage, closed.closure.suppliers], ['closed', [NAMED]]);
    await waitFor(
      async () => (await db()('supplier_qualifications').where({ supplier: NAMED }).first())?.erp_state === 'written' || null,
      'the hold',
    );
    assert.equal(p.stub.table('Supplier').get(NAMED)?.on_hold, 1);
    assert.equal(
      await db()('supplier_qualifications').where({ supplier: NOT_NAMED }).first(),
      undefined,
      'the supplier not named is not touched',
    );
    assert.equal(p.stub.table('Supplier').get(NOT_NAMED)?.on_hold, 0);
    const event = await db()('audit_events').where({ entity_type: 'capa', entity_id: number, action: 'capa.closed' }).first();
    assert.deepEqual(event.details.suppliers, [NAMED]);
    await testEnv().client.workflow.getHandle(capaRun).terminate('test over');
  });
});
