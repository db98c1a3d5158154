import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection } from '@temporalio/worker';
import pino from 'pino';
import { createAuditChainKeyFile } from '../../db/audit-chain';
import { conventionalRoleNames, databaseUrlAs, type DatabaseUrls } from '../../common/config';
import { dropRoles, setUpDatabase } from '../../db/database-roles';
import { createDb, dropDatabase } from '../../db/knex';
import { dataConverterFor, FAILURE_CONVERTER_PATH, WORKFLOW_INTERCEPTOR_MODULES } from '../../platform/data-converter';
import { REDACTED_PATHS } from '../../platform/logger';
import { generatePayloadKeys, parsePayloadKeys } from '../../platform/payload-codec';
import { installRuntime } from '../../workers/runtime';
import { startTestTemporal, type TestTemporal } from './test-temporal';
import { startSmtpSink } from '../helpers/smtp-sink';
import { setTestEnv, testEnv } from './env';

let temporal: TestTemporal | undefined;
const ignore = () => undefined;
const quietBundler = { log: ignore, trace: ignore, debug: ignore, info: ignore, warn: ignore, error: ignore };
let stopSmtp: (() => Promise<void>) | undefined;
let clientConnection: Connection | undefined;
// The audit chain key of the run, outside the database as in production; processes a test starts inherit it.
let auditKeyDir: string | undefined;

const baseDatabaseUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

// The Temporal runtime is installed once per process and keeps its logger. It is installed at trace level so that
// a test can hear everything (captureRuntimeLogs); otherwise the logger drops what is below the run's level.
const runtimeLevel = (process.env.TEST_LOG_LEVEL as pino.Level | undefined) ?? 'error';
const runtimeSinks = new Set<(line: string) => void>();
const runtimeLog = pino(
  { name: 'test-worker', level: 'trace', redact: { paths: REDACTED_PATHS, censor: '[redacted]' } },
  pino.multistream([
    { level: runtimeLevel, stream: process.stdout },
    { level: 'trace', stream: { write: (line: string) => runtimeSinks.forEach((sink) => sink(line)) } },
  ]),
);

/** Every line the Temporal runtime logs (SDK, workflows, activities) also goes to `sink`, until the returned stop. */
export function captureRuntimeLogs(sink: (line: string) => void): () => void {
  runtimeSinks.add(sink);
  runtimeLog.level = 'trace';
  return () => {
    runtimeSinks.delete(sink);
    if (runtimeSinks.size === 0) runtimeLog.level = runtimeLevel;
  };
}

export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(300_000);
    installRuntime(runtimeLog, 0);
    auditKeyDir = mkdtempSync(join(tmpdir(), 'labflow-audit-key-'));
    createAuditChainKeyFile(join(auditKeyDir, 'audit-chain-key'));
    process.env.AUDIT_CHAIN_KEY_FILE = join(auditKeyDir, 'audit-chain-key');
    runtimeLog.level = runtimeLevel;
    const url = new URL(baseDatabaseUrl);
    url.pathname = `/labflow_test_${process.pid}_${randomBytes(3).toString('hex')}`;
    const databaseUrl = url.toString();
    const roles = conventionalRoleNames(databaseUrl);
    const urls: DatabaseUrls = {
      admin: databaseUrl,
      owner: databaseUrlAs(databaseUrl, roles.owner),
      app: databaseUrlAs(databaseUrl, roles.app),
      backup: databaseUrlAs(databaseUrl, roles.backup),
    };

    const [server, smtp, bundle] = await Promise.all([
      startTestTemporal(baseDatabaseUrl),
      startSmtpSink(),
      bundleWorkflowCode({
        workflowsPath: require.resolve('../../workflows'),
        failureConverterPath: FAILURE_CONVERTER_PATH,
        workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
        logger: quietBundler,
      }),
      // Created and migrated as npm start does it: roles, the owner's migrations, the application role's grants.
      setUpDatabase(urls),
    ]);
    temporal = server;
    stopSmtp = smtp.stop;
    const db = createDb(databaseUrl, 20);
    clientConnection = await Connection.connect(server.connectionOptions);
    // A fresh key set per run, with an older key behind the current one: everything the tests run is encrypted,
    // as in production.
    const payloadKeys = `${generatePayloadKeys('test-current')},${generatePayloadKeys('test-previous')}`;
    const dataConverter = dataConverterFor(parsePayloadKeys(payloadKeys), { side: 'worker' });
    setTestEnv({
      temporalAddress: server.address,
      databaseUrl,
      db,
      roles,
      appDatabaseUrl: urls.app,
      appDb: createDb(urls.app, 20),
      backupDatabaseUrl: urls.backup,
      client: new Client({ connection: clientConnection, dataConverter }),
      payloadKeys,
      dataConverter,
      temporalEnv: server.processEnv,
      temporalServer: server.server,
      nativeConnection: await NativeConnection.connect(server.connectionOptions),
      workflowBundle: bundle,
      smtpPort: smtp.port,
      mails: smtp.received,
    });
  },

  async afterAll(this: Mocha.Context) {
    this.timeout(60_000);
    let env;
    try {
      env = testEnv();
    } catch {
      env = undefined;
    }
    if (env) {
      await env.nativeConnection.close();
      await env.db.destroy();
      await env.appDb.destroy();
      await dropDatabase(env.databaseUrl);
      // Roles are the server's, not the database's: they go too, unless a database a test left behind still uses them.
      const left = await dropRoles(env.databaseUrl, Object.values(env.roles));
      if (left.length) process.stderr.write(`roles left on the server (still in use): ${left.join(', ')}\n`);
    }
    await clientConnection?.close();
    await stopSmtp?.();
    await temporal?.stop();
    setTestEnv(undefined);
    if (auditKeyDir) rmSync(auditKeyDir, { recursive: true, force: true });
  },
};
