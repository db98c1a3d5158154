import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { databaseUrlAs } from '../../common/config';
import { createDb, dropDatabase } from '../../db/knex';
import { freePort } from '../../scripts/lib/free-port';
import { stopProcess } from '../../scripts/lib/worker-process';
import { testEnv } from '../setup/env';
import { approve, createDraft, getVersion, submit, waitForState } from '../helpers/documents';
import { apiCaller } from '../helpers/platform';
import { makeUsers } from '../helpers/users';
import { waitFor } from '../helpers/wait';

const root = join(__dirname, '..', '..');
const run = promisify(execFile);

/** A compiled entry point run as production runs it (`node dist/...`), its output kept for the assertions. */
function startCompiled(entry: string, env: Record<string, string>): { child: ChildProcess; output: () => string } {
  let output = '';
  const child = spawn(process.execPath, [entry], {
    cwd: tmpdir(),
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'info', LOG_PRETTY: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return { child, output: () => output };
}

describe('the compiled build (npm run build): node dist/... runs the worker, the API and the migrations', function () {
  // tsc and webpack on a loaded 2-core machine, then three processes that each connect to Temporal and PostgreSQL.
  this.timeout(900_000);
  let dir: string;
  let dist: string;
  let databaseUrl: string;
  const processes: ChildProcess[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'labflow-build-'));
    dist = join(dir, 'dist');
    // The compiled code resolves its packages as the image does, from a node_modules beside it.
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
    await run('bash', [join(root, 'scripts', 'build.sh'), '--no-typecheck', dist], { cwd: root, maxBuffer: 16 * 1024 * 1024 });
  });

  after(async () => {
    for (const child of processes) await stopProcess(child);
    if (databaseUrl) await dropDatabase(databaseUrl);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('writes the entry points, the prebuilt workflow bundle and the assets the code reads', () => {
    for (const file of ['workers/main.js', 'api/server.js', 'scripts/migrate.js', 'workflow-bundle.js', 'assets/fonts']) {
      assert.ok(existsSync(join(dist, file)), `${file} is missing from the build`);
    }
  });

  it('migrates a new database with node dist/scripts/migrate.js, to the schema the suite runs on', async () => {
    const env = testEnv();
    const url = new URL(env.databaseUrl);
    url.pathname = `/labflow_build_${process.pid}_${randomBytes(3).toString('hex')}`;
    databaseUrl = url.toString();
    const migrate = await run(process.execPath, [join(dist, 'scripts', 'migrate.js')], {
      cwd: tmpdir(),
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        DATABASE_URL: databaseUrlAs(databaseUrl, env.roles.app),
        MIGRATION_DATABASE_URL: databaseUrlAs(databaseUrl, env.roles.owner),
        BACKUP_DATABASE_URL: databaseUrlAs(databaseUrl, env.roles.backup),
        DATABASE_ADMIN_URL: databaseUrl,
      },
    });
    assert.match(migrate.stdout, /\[migrate\] applied /);
    const db = createDb(databaseUrl, 1);
    try {
      const names = async (d: typeof db) => (await d('knex_migrations').orderBy('name').pluck('name')) as string[];
      assert.deepEqual(await names(db), await names(env.db));
    } finally {
      await db.destroy();
    }
  });

  it('runs a document from submit to effective through the compiled API and worker', async () => {
    const env = testEnv();
    // The run's own database: workflow IDs are business keys, and a second database would number its documents
    // from DOC-0001 again, IDs that other tests' runs on this Temporal namespace already hold.
    const roleUrls = { DATABASE_URL: env.appDatabaseUrl, BACKUP_DATABASE_URL: env.backupDatabaseUrl };
    const taskQueue = `compiled-${randomBytes(4).toString('hex')}`;
    const common = {
      ...env.temporalEnv,
      ...roleUrls,
      TEMPORAL_TASK_QUEUE: taskQueue,
      PAYLOAD_KEYS: env.payloadKeys,
      AUDIT_CHAIN_KEY_FILE: process.env.AUDIT_CHAIN_KEY_FILE!,
      SMTP_URL: `smtp://127.0.0.1:${env.smtpPort}`,
      MAIL_FROM: 'labflow <labflow@lab.test>',
      DATA_DIR: join(dir, 'data'),
    };
    const worker = startCompiled(join(dist, 'workers', 'main.js'), { ...common, SCHEDULES: 'false', WORKER_METRICS_PORT: '0' });
    processes.push(worker.child);
    const port = await freePort();
    const api = startCompiled(join(dist, 'api', 'server.js'), { ...common, API_PORT: String(port), SEED_DEV_USERS: 'false' });
    processes.push(api.child);

    const alive = (name: string, p: { child: ChildProcess; output: () => string }) => {
      if (p.child.exitCode !== null) throw new Error(`the compiled ${name} exited with ${p.child.exitCode}:\n${p.output()}`);
    };
    await waitFor(() => (alive('worker', worker), worker.output().includes('worker polling')), 'the compiled worker to poll', 180_000, 250);
    // The production worker loads the bundle the build wrote, and never runs webpack.
    assert.match(worker.output(), /workflows from the prebuilt bundle/);
    assert.doesNotMatch(worker.output(), /bundling workflows at start-up|Workflow bundle created/);

    const baseUrl = `http://127.0.0.1:${port}`;
    await waitFor(
      async () => {
        alive('API', api);
        return (await fetch(`${baseUrl}/readyz`).catch(() => undefined))?.status === 200;
      },
      'the compiled API to be ready',
      180_000,
      250,
    );

    const p = apiCaller(baseUrl);
    const u = await makeUsers({ author: ['author'], rita: ['reviewer'] });
    const { number, version, contentHash } = await createDraft(p, u.author);
    await submit(p, u.author, number, version, { routing: [{ name: 'Review', assignees: [{ user: u.rita.username }] }] });
    await waitFor(
      async () => (await getVersion(p, u.author.apiKey, number, version)).process?.stages[0].status === 'active',
      'the review stage to open',
      120_000,
      250,
    );
    const decision = await approve(p, u.rita, number, version, contentHash);
    assert.equal(decision.status, 200, JSON.stringify(decision.body));
    await waitForState(p, u.author.apiKey, number, version, 'effective', 120_000);
  });
});
