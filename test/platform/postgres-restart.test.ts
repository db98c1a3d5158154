import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { databaseUrlAs } from '../../common/config';
import { setUpDatabase } from '../../db/database-roles';
import { createDb, type Db } from '../../db/knex';
import { freePort } from '../../scripts/lib/free-port';
import { startPrivatePostgres, type PrivatePostgres } from '../../scripts/lib/private-postgres';
import { oneStage } from '../api/support';
import { approve, createDraft, submit, versionPath, waitForState } from '../helpers/documents';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';

/**
 * labflow on a PostgreSQL server of its own, which is stopped and started again while the API and the worker keep
 * running: meanwhile the API answers 503 problem+json (never 500) and work the worker is given waits; afterwards both
 * carry on by themselves, with nothing lost and nothing applied twice.
 */
describe('PostgreSQL restarted under the running platform', function () {
  this.timeout(240_000);
  let dir: string;
  let port: number;
  let pg: PrivatePostgres;
  let db: Db;
  let p: Platform;
  let u: { author: TestUser; reviewer: TestUser };

  const startPg = () => startPrivatePostgres({ dataDir: join(dir, 'data'), logFile: join(dir, 'postgres.log'), port });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'labflow-pg-restart-'));
    chmodSync(dir, 0o755); // run as root, the cluster runs as the postgres user, who must reach it
    port = await freePort('127.0.0.1');
    pg = await startPg();
    const admin = pg.url('labflow_restart');
    const { roles } = testEnv();
    await setUpDatabase({
      admin,
      owner: databaseUrlAs(admin, roles.owner),
      app: databaseUrlAs(admin, roles.app),
      backup: databaseUrlAs(admin, roles.backup),
    });
    db = createDb(admin, 4);
    p = await startPlatform({ db });
    u = await makeUsers({ author: ['author'], reviewer: ['reviewer'] }, db);
  });
  after(async () => {
    await p?.stop();
    await db?.destroy();
    await pg?.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 503 while it is down, and carries on without a restart once it is back', async () => {
    const draft = await createDraft(p, u.author);
    const { workflowId } = await submit(p, u.author, draft.number, draft.version, oneStage([u.reviewer]));
    await waitForState(p, u.author.apiKey, draft.number, draft.version, 'in_review');

    await pg.stop();
    // Work given to the worker meanwhile: a canary run whose one activity writes to the database.
    const canary = await testEnv().client.workflow.start('healthCanaryWorkflow', {
      taskQueue: p.taskQueue,
      workflowId: `pg-restart-canary-${draft.number}`,
      args: [],
    });
    for (const [method, path, body] of [
      ['GET', versionPath(draft.number, draft.version), undefined],
      ['GET', '/api/v1/documents', undefined],
      ['POST', '/api/v1/documents', { title: 'Written while the database is down', docType: 'form' }],
    ] as const) {
      const res = await p.api(method, path, { key: u.author.apiKey, body });
      assert.equal(res.status, 503, `${method} ${path}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.type, 'urn:labflow:problem:dependency-unavailable');
      assert.ok(res.headers.get('retry-after'), 'Retry-After');
    }
    assert.equal((await p.api('GET', '/readyz')).status, 503);

    pg = await startPg();
    await waitFor(async () => ((await p.api('GET', '/readyz')).status === 200 ? true : null), 'the API to find PostgreSQL again', 60_000);
    assert.ok(await canary.result(), 'the canary run the worker was given during the outage finished');
    assert.equal(await db('documents').where({ title: 'Written while the database is down' }).count('* as n').first().then((r) => Number(r?.n)), 0);

    const decided = await approve(p, u.reviewer, draft.number, draft.version, draft.contentHash);
    assert.equal(decided.status, 200, JSON.stringify(decided.body));
    await waitForState(p, u.author.apiKey, draft.number, draft.version, 'effective');
    const signatures = await db('signatures').where({ workflow_id: workflowId });
    assert.equal(signatures.length, 1, 'one signature, recorded once');
  });
});
