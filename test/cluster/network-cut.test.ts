import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { ErpSyncResult } from '../../common/erp-sync';
import type { ErpNextStub } from '../helpers/erpnext-stub';
import { createNamespaceLink, netnsUnavailable, type NamespaceLink } from '../helpers/network-namespace';
import { startTcpForwarder, type TcpForwarder } from '../helpers/tcp-forwarder';
import { waitFor } from '../helpers/wait';
import { killHard, spawnWorker } from '../helpers/worker-process';
import { testEnv } from '../setup/env';
import { testTemporalKind } from '../setup/test-temporal';
import { clearErpTables, count, startErpPlatform, type ErpPlatform } from '../erp-sync/support';

const ITEMS = 400;
const LATER_ITEMS = 40;
/** The PostgreSQL sessions of the worker in the namespace carry this name, so the test can see what they are doing. */
const CUT_OFF_APP = 'labflow-worker-cut-off';

const putItems = (stub: ErpNextStub, from: number, to: number) => {
  for (let i = from; i <= to; i++)
    stub.put('Item', { name: `ITM-${String(i).padStart(6, '0')}`, item_name: `Item ${i}`, stock_uom: 'Nos' });
};

/**
 * One worker process in a network namespace of its own, joined to the host by a veth pair: it reaches the Temporal
 * frontend, PostgreSQL, SMTP and the ERP only through that link (TCP forwarders on the host's end). The link is taken
 * down while the worker is in the middle of an ERP sync's paging activity: the work stalls until the server gives up
 * on the silent attempt (its heartbeat timeout), then moves to a worker outside the namespace, which finishes it.
 * Once the link is up again, the cut-off worker, never restarted, takes new work. No row is stored twice.
 */
describe('a worker cut off from the Temporal server by a network cut, and the cut healed', function () {
  this.timeout(420_000);
  let link: NamespaceLink | undefined;
  const forwarders: TcpForwarder[] = [];
  /** The ERP stub, and a worker outside the namespace (in the test's process) that starts only when asked. */
  let p: ErpPlatform;
  let stub: ErpNextStub;
  let cutOff: ChildProcess | undefined;
  let releaseHeld: () => void = () => undefined;

  before(async function () {
    // It runs once, in the cluster profile (scripts/test-cluster.sh), not again in the dev-server run of the suite.
    if (testTemporalKind() !== 'cluster') this.skip();
    const unavailable = await netnsUnavailable();
    if (unavailable) {
      process.stderr.write(`      skipped: ${unavailable}\n`);
      this.skip();
    }
    await clearErpTables();
    p = await startErpPlatform({ withWorker: false });
    stub = p.stub;
    putItems(stub, 1, ITEMS);
    stub.listDelayMs = 100;
    link = await createNamespaceLink();
    const env = testEnv();
    const via = async (target: string) => {
      const forwarder = await startTcpForwarder(link!.hostAddress, target);
      forwarders.push(forwarder);
      return forwarder.address;
    };
    // The same database as the application role, reached through the link, under a name of its own.
    const throughLink = async (databaseUrl: string) => {
      const url = new URL(databaseUrl);
      const [host, port] = (await via(`${url.hostname}:${url.port || '5432'}`)).split(':');
      url.hostname = host;
      url.port = port;
      url.searchParams.set('application_name', CUT_OFF_APP);
      return url.toString();
    };
    cutOff = await spawnWorker(
      p.taskQueue,
      {
        // On the cluster, TLS still names the server it expects: TEMPORAL_TLS_SERVER_NAME comes with temporalEnv.
        TEMPORAL_ADDRESS: await via(env.temporalEnv.TEMPORAL_ADDRESS),
        DATABASE_URL: await throughLink(env.appDatabaseUrl),
        BACKUP_DATABASE_URL: await throughLink(env.backupDatabaseUrl),
        SMTP_URL: `smtp://${await via(`127.0.0.1:${env.smtpPort}`)}`,
        ERP_URL: `http://${await via(new URL(stub.url).host)}`,
        ERP_API_KEY: stub.apiKey,
        ERP_API_SECRET: stub.apiSecret,
        ERP_TIME_ZONE: 'Europe/Berlin',
        ERP_RATE_LIMIT: '1000',
      },
      link.under,
    );
  });
  after(async () => {
    releaseHeld();
    if (cutOff) await killHard(cutOff);
    await Promise.all(forwarders.map((f) => f.close()));
    await link?.remove();
    await p?.stop();
  });

  const syncItems = (id: string) =>
    testEnv().client.workflow.start('erpSyncWorkflow', {
      workflowId: `erp-sync:net-cut-${id}-${randomBytes(3).toString('hex')}`,
      taskQueue: p.taskQueue,
      args: [{ scope: 'items', pageSize: 20, pagesPerActivity: 100, heartbeatTimeout: '5s' }],
    });

  /** The worker that holds the run's pending paging activity, as the server names it (`<pid>@<host>`). */
  const pagingHolder = async (workflowId: string) => {
    const { raw } = await testEnv().client.workflow.getHandle(workflowId).describe();
    return raw.pendingActivities?.find((a) => a.activityType?.name === 'syncErpEntity');
  };

  /**
   * The workers that ran the run's paging activities to their end, as its history names them (a retried activity's
   * started event is written when it ends, with the identity of the attempt that ended it).
   */
  const pagingWorkers = async (workflowId: string) => {
    const { events } = await testEnv().client.workflow.getHandle(workflowId).fetchHistory();
    const scheduled = new Set(
      (events ?? [])
        .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'syncErpEntity')
        .map((e) => String(e.eventId)),
    );
    return (events ?? [])
      .filter((e) => scheduled.has(String(e.activityTaskStartedEventAttributes?.scheduledEventId)))
      .map((e) => e.activityTaskStartedEventAttributes!.identity ?? '');
  };

  const auditedPages = async (syncRunId: string) =>
    (
      await testEnv()
        .db('audit_events')
        .where({ action: 'erp.page_stored', entity_id: 'items' })
        .whereRaw(`details->>'syncRunId' = ?`, [syncRunId])
    ).reduce((n, e) => n + e.details.stored, 0);

  it('stalls the work while the link is down, lets the worker outside finish it, and takes new work once healed', async () => {
    const { db } = testEnv();
    const cutOffIdentity = `${cutOff!.pid}@`;
    const outsideIdentity = `${process.pid}@`;
    const first = await syncItems('first');
    await waitFor(async () => ((await count('erp_items')) >= 100 ? true : null), 'some pages stored by the cut-off worker', 120_000, 20);

    // Hold the ERP's answer to the next page, so the worker is waiting on the ERP, not writing, when the link goes.
    let held!: () => void;
    const holding = new Promise<void>((resolve) => (held = resolve));
    const release = new Promise<void>((resolve) => (releaseHeld = resolve));
    let armed = true;
    stub.onList = async () => {
      if (!armed) return;
      armed = false;
      held();
      await release;
    };
    await holding;
    await waitFor(
      async () =>
        Number(
          (await db.raw(`select count(*) as n from pg_stat_activity where application_name = ? and state <> 'idle'`, [CUT_OFF_APP])).rows[0]
            .n,
        ) === 0,
      'the cut-off worker to finish writing the page before the held one',
    );
    const holder = await pagingHolder(first.workflowId);
    assert.ok(holder?.lastWorkerIdentity?.startsWith(cutOffIdentity), `the cut-off worker is paging (${holder?.lastWorkerIdentity})`);
    const storedAtCut = await count('erp_items');
    assert.ok(storedAtCut < ITEMS, 'cut in the middle of the pages');

    await link!.cut();
    // The ERP answers now; the answer cannot reach the worker.
    releaseHeld();
    const retried = await waitFor(
      async () => {
        const paging = await pagingHolder(first.workflowId);
        return paging && (paging.attempt ?? 0) >= 2 ? paging : null;
      },
      'the server to give up on the silent attempt (heartbeat timeout)',
      120_000,
    );
    assert.match(String(retried.lastFailure?.message ?? ''), /heartbeat/i, 'the attempt timed out on its heartbeat');
    assert.equal(await count('erp_items'), storedAtCut, 'nothing was stored while the only worker was cut off');
    assert.equal(cutOff!.exitCode, null, 'the cut-off worker is still running');

    // A worker outside the namespace finishes the work, resuming from the stored cursor.
    await p.startErpWorker();
    const result = (await first.result()) as ErpSyncResult;
    assert.equal(result.state, 'completed');
    assert.equal(await count('erp_items'), ITEMS);
    const run = await db('erp_sync_runs').where({ id: result.syncRunId }).first();
    assert.deepEqual([run.counts.items.fetched, run.counts.items.stored], [ITEMS, ITEMS], 'every row counted once');
    assert.equal(await auditedPages(result.syncRunId), ITEMS, 'each stored page audited once');
    const finishedBy = await pagingWorkers(first.workflowId);
    assert.ok(
      finishedBy.length > 0 && finishedBy.every((identity) => identity.startsWith(outsideIdentity)),
      `the worker outside finished the paging (${finishedBy.join(', ')})`,
    );

    // Only the cut-off worker is left; the link comes back and it carries on by itself.
    await p.stopErpWorker();
    await link!.heal();
    putItems(stub, ITEMS + 1, ITEMS + LATER_ITEMS);
    const second = await syncItems('second');
    const secondResult = (await second.result()) as ErpSyncResult;
    assert.equal(secondResult.state, 'completed');
    assert.equal(cutOff!.exitCode, null, 'the cut-off worker was never restarted');
    const secondWorkers = await pagingWorkers(second.workflowId);
    assert.ok(
      secondWorkers.length > 0 && secondWorkers.every((identity) => identity.startsWith(cutOffIdentity)),
      `the healed worker did the new work (${secondWorkers.join(', ')})`,
    );
    assert.equal(await count('erp_items'), ITEMS + LATER_ITEMS);
    const secondRun = await db('erp_sync_runs').where({ id: secondResult.syncRunId }).first();
    assert.deepEqual([secondRun.counts.items.fetched, secondRun.counts.items.stored], [LATER_ITEMS, LATER_ITEMS]);
    // The page the cut-off worker was sent during the cut, if it arrived after the healing, stored nothing again.
    assert.equal(await auditedPages(result.syncRunId), ITEMS, 'the first run stored nothing more after the healing');
    assert.equal(await auditedPages(secondResult.syncRunId), LATER_ITEMS);
  });
});
