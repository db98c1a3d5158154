import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { spawnWorkerProcess, stopProcess } from '../../scripts/lib/worker-process';
import { ErpNextStub } from '../helpers/erpnext-stub';
import { testBundleFile } from '../helpers/worker-process';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { clearErpTables, count } from './support';

const ITEMS = 600;

describe('the ERP sync when its worker is killed', () => {
  let stub: ErpNextStub;
  let workers: ChildProcess[] = [];
  const taskQueue = `test-erp-crash-${randomBytes(4).toString('hex')}`;
  const spawn = async () => {
    const env = testEnv();
    const child = await spawnWorkerProcess({
      ...env.temporalEnv,
      TEMPORAL_TASK_QUEUE: taskQueue,
      DATABASE_URL: env.databaseUrl,
      SMTP_URL: `smtp://127.0.0.1:${env.smtpPort}`,
      ERP_URL: stub.url,
      ERP_API_KEY: stub.apiKey,
      ERP_API_SECRET: stub.apiSecret,
      ERP_TIME_ZONE: 'Europe/Berlin',
      ERP_RATE_LIMIT: '1000',
      PAYLOAD_KEYS: env.payloadKeys,
      WORKFLOW_BUNDLE_PATH: testBundleFile(),
    });
    workers.push(child);
    return child;
  };

  before(async () => {
    await clearErpTables();
    stub = new ErpNextStub();
    await stub.start();
    for (let i = 1; i <= ITEMS; i++)
      stub.put('Item', { name: `ITM-${String(i).padStart(6, '0')}`, item_name: `Item ${i}`, stock_uom: 'Nos' });
    stub.listDelayMs = 120;
  });
  after(async () => {
    for (const w of workers) await stopProcess(w, 'SIGKILL');
    workers = [];
    await stub.stop();
  });

  it('loses no row and stores none twice when the worker is SIGKILLed in the middle of the pages', async () => {
    const env = testEnv();
    const first = await spawn();
    const handle = await env.client.workflow.start('erpSyncWorkflow', {
      workflowId: `erp-sync:crash-${randomBytes(3).toString('hex')}`,
      taskQueue,
      args: [{ scope: 'items', pageSize: 20, pagesPerActivity: 100, heartbeatTimeout: '3s' }],
    });
    const stored = await waitFor(
      async () => {
        const n = await count('erp_items');
        return n >= 100 ? n : 0;
      },
      'some pages stored',
      60_000,
      20,
    );
    await stopProcess(first, 'SIGKILL');
    assert.ok(stored < ITEMS, 'killed in the middle of the pages');
    await spawn();
    const result = await handle.result();
    assert.equal(result.state, 'completed');
    assert.equal(await count('erp_items'), ITEMS);
    const run = await env.db('erp_sync_runs').where({ id: result.syncRunId }).first();
    assert.deepEqual([run.counts.items.fetched, run.counts.items.stored], [ITEMS, ITEMS], 'every row counted once');
    const pages = await env
      .db('audit_events')
      .where({ action: 'erp.page_stored', entity_id: 'items' })
      .whereRaw(`details->>'syncRunId' = ?`, [result.syncRunId]);
    assert.equal(
      pages.reduce((n, e) => n + e.details.stored, 0),
      ITEMS,
      'each stored page audited once',
    );
    assert.ok(stub.count({ doctype: 'Item' }) > Math.ceil(ITEMS / 19), 'the page in flight at the kill was fetched again');
  });
});
