import { randomBytes } from 'node:crypto';
import type { Worker } from '@temporalio/worker';
import { createActivities, type Activities } from '../../activities';
import type { ErpSetup } from '../../activities/erp-sync';
import { erpSyncActivities } from '../../activities/erp-sync';
import { ErpNextAdapter } from '../../activities/erp/erpnext';
import { SharedRateBudget } from '../../activities/erp/rate-budget';
import { createMailer } from '../../activities/mailer';
import { supplierQualificationActivities } from '../../activities/supplier-qualification';
import type { ErpSyncInput, ErpSyncResult } from '../../common/erp-sync';
import { createWorker } from '../../workers/create-worker';
import { ErpNextStub } from '../helpers/erpnext-stub';
import { startPlatform, type Platform } from '../helpers/platform';
import { testEnv } from '../setup/env';

export const ERP_TABLES = [
  'erp_rate_budgets',
  'supplier_qualifications',
  'erp_dead_letters',
  'erp_sync_runs',
  'erp_sync_cursors',
  'incoming_inspection_hooks',
  'erp_purchase_receipt_items',
  'erp_purchase_receipts',
  'erp_purchase_order_items',
  'erp_purchase_orders',
  'erp_items',
  'erp_suppliers',
];

/**
 * The ERP tables are shared by the whole run; each test starts from none of the ERP's data. Samples an earlier test
 * registered for received goods stay (other suites share the samples table) but no longer claim their receipt lines.
 */
export async function clearErpTables(): Promise<void> {
  await testEnv().db.raw(`truncate ${ERP_TABLES.join(', ')}`);
  await testEnv().db('samples').where({ source: 'erp' }).whereNotNull('external_id').update({ external_id: null });
}

export interface ErpPlatform extends Platform {
  stub: ErpNextStub;
  erp: ErpSetup;
  sync(input: Partial<ErpSyncInput>): Promise<ErpSyncResult>;
  startErpWorker(): Promise<void>;
  stopErpWorker(): Promise<void>;
  /** The activities the worker runs, over the same database and the SMTP sink, to call one directly. */
  activities: Activities;
}

/**
 * An ERPNext-shaped server, the real API (without the harness's worker) and a worker on the same task queue whose
 * ERP activities talk to that server.
 */
export async function startErpPlatform(
  options: {
    timeZone?: string;
    timeoutMs?: number;
    pageSize?: number;
    /** Replaces some of the worker's activities (to hold one at a given moment). */
    wrapActivities?: (activities: Activities) => Partial<Activities>;
    /** false: no worker until startErpWorker() (another worker polls the task queue first). */
    withWorker?: boolean;
  } = {},
): Promise<ErpPlatform> {
  const env = testEnv();
  const stub = new ErpNextStub();
  await stub.start();
  const p = await startPlatform({ withWorker: false });
  const erp: ErpSetup = {
    adapter: new ErpNextAdapter({
      url: stub.url,
      apiKey: stub.apiKey,
      apiSecret: stub.apiSecret,
      timeoutMs: options.timeoutMs ?? 5000,
      ratePerSecond: 1000,
      budget: new SharedRateBudget(env.db, stub.url, 1000),
    }),
    timeZone: options.timeZone ?? 'Europe/Berlin',
    pageSize: options.pageSize ?? 25,
  };
  const mailer = createMailer({
    smtpUrl: `smtp://127.0.0.1:${env.smtpPort}`,
    from: 'labflow <labflow@lab.test>',
    outboxDir: '/nonexistent',
  });
  const deps = { db: env.db, mailer, publicUrl: 'http://labflow.test', mailDomain: 'lab.test', erp };
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  const withWrapped = (activities: Activities): Activities => ({ ...activities, ...options.wrapActivities?.(activities) });
  const startErpWorker = async () => {
    worker = await createWorker({
      connection: env.nativeConnection,
      namespace: 'default',
      taskQueue: p.taskQueue,
      activities: withWrapped({ ...createActivities(deps), ...erpSyncActivities(deps), ...supplierQualificationActivities(deps) }),
      workflowBundle: env.workflowBundle,
      dataConverter: env.dataConverter,
    });
    running = worker.run();
  };
  const stopErpWorker = async () => {
    if (worker && worker.getState() === 'RUNNING') worker.shutdown();
    await running;
    worker = undefined;
  };
  if (options.withWorker !== false) await startErpWorker();
  return {
    ...p,
    stub,
    erp,
    startErpWorker,
    stopErpWorker,
    activities: createActivities(deps),
    sync: (input) =>
      env.client.workflow.execute('erpSyncWorkflow', {
        workflowId: `erp-sync:test-${randomBytes(4).toString('hex')}`,
        taskQueue: p.taskQueue,
        args: [{ scope: 'all', pageSize: 10, ...input }],
      }),
    async stop() {
      await p.stop();
      await stopErpWorker();
      mailer.close();
      await stub.stop();
    },
  };
}

export const count = async (table: string, where: Record<string, unknown> = {}) =>
  Number((await testEnv().db(table).where(where).count({ n: '*' }))[0].n);
