/**
 * Drives a real ERP sync against the ERPNext stub and a real supplier qualification on the test server, and saves
 * their histories as replay fixtures in test/fixtures/histories/erp-sync/. Run with `npx mocha
 * test/erp-sync/capture-histories.ts` after a deliberate change to what a run records; commit the new files.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { workflowIds } from '../../common/ids';
import type { ErpSyncInput, ErpSyncResult } from '../../common/erp-sync';
import { fetchFixture, saveFixture } from '../../workers/replay';
import { historiesDir } from '../helpers/replay-suite';
import { seedErp } from '../helpers/erpnext-stub';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { clearErpTables, count, startErpPlatform, type ErpPlatform } from './support';

const dir = historiesDir('erp-sync');

describe('capturing ERP replay fixtures from real runs', () => {
  let p: ErpPlatform;
  let u: Record<'qa', TestUser>;
  const save = async (name: string, workflowId: string, runId?: string) =>
    saveFixture(join(dir, `${name}.json`), await fetchFixture(testEnv().client, workflowId, runId));

  before(async () => {
    mkdirSync(dir, { recursive: true });
    u = await makeUsers({ qa: ['qa_manager'] });
    await clearErpTables();
    p = await startErpPlatform();
    seedErp(p.stub, { suppliers: 12, items: 40, purchaseOrders: 30, receipts: 20 });
  });
  after(() => p.stop());

  it('captures a full sync of every entity: its first run (continued as new) and its last', async () => {
    const workflowId = workflowIds.erpSync('all');
    const handle = await testEnv().client.workflow.start('erpSyncWorkflow', {
      workflowId,
      taskQueue: p.taskQueue,
      args: [{ scope: 'all', pageSize: 10, requestedBy: 'capture' } satisfies ErpSyncInput],
    });
    const result = (await handle.result()) as ErpSyncResult;
    assert.equal(result.state, 'completed');
    assert.equal(await count('erp_items'), 40);
    const first = testEnv().client.workflow.getHandle(workflowId, handle.firstExecutionRunId);
    assert.ok(
      (await first.fetchHistory()).events?.some((e) => e.workflowExecutionContinuedAsNewEventAttributes),
      'the first run continued as new',
    );
    await save('erp-sync-all-first-run', workflowId, handle.firstExecutionRunId);
    await save('erp-sync-all-last-run', workflowId);
  });

  it('captures a supplier suspended, approved again and disqualified, each written to the ERP', async () => {
    const supplier = 'Qiagen';
    const workflowId = workflowIds.supplierQualification(supplier);
    const projection = () => testEnv().db('supplier_qualifications').where({ supplier }).first();
    const decide = async (decision: string, status: string) => {
      const res = await p.api('POST', `/api/v1/suppliers/${encodeURIComponent(supplier)}/qualification/${decision}`, {
        key: u.qa.apiKey,
        body: { reason: `capture: ${decision}` },
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      await waitFor(async () => {
        const row = await projection();
        return row?.status === status && row.erp_state === 'written';
      }, `${decision} written to the ERP`);
    };
    await decide('suspend', 'suspended');
    await decide('approve', 'approved');
    await decide('disqualify', 'disqualified');
    await waitFor(
      async () => (await testEnv().client.workflow.getHandle(workflowId).describe()).status.name === 'COMPLETED',
      `${workflowId} completed`,
    );
    await save('supplier-qualification-disqualified', workflowId);
  });
});
