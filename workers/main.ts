import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { createActivities } from '../activities';
import { erpSetupFromConfig } from '../activities/erp-sync';
import { llmSetupFromConfig } from '../activities/llm/setup';
import { createMailer } from '../activities/mailer';
import { databaseUrls, loadConfig } from '../common/config';
import { auditChainFromConfig } from '../db/audit-chain';
import { createDb } from '../db/knex';
import { dataConverterFor, loadPayloadKeys } from '../platform/data-converter';
import { createLogger } from '../platform/logger';
import { mailDomainOf } from '../platform/mail-domain';
import { temporalConnectionOptions } from '../platform/temporal-connection';
import { workerDeploymentFromConfig } from '../platform/worker-deployment';
import { createWorker } from './create-worker';
import { installRuntime } from './runtime';
import { alertUndecodableSchedules } from './schedule-alerts';
import { ensureSchedules } from './schedules';
import { ensureSearchAttributes, waitUntilSearchAttributesUsable } from './search-attributes';
import { startWebhookWakeups } from './webhook-wakeups';
import { createEventBell } from '../activities/event-bell';
import { prebuiltBundlePath } from './workflow-bundle';
import { webhookSettings } from '../common/webhook-delivery';
import { noticeSettings, twilioSettings } from '../common/notifications';
import { join } from 'node:path';

// A real server resolves new attributes after its namespace cache refreshes (seconds); this covers a busy machine.
const SEARCH_ATTRIBUTES_TIMEOUT_MS = 120_000;

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config, 'worker');
  installRuntime(log, config.WORKER_METRICS_PORT);
  const bundlePath = prebuiltBundlePath(config.WORKFLOW_BUNDLE_PATH);
  log.info({ workflowBundle: bundlePath ?? null }, bundlePath ? 'workflows from the prebuilt bundle' : 'bundling workflows at start-up');

  const urls = databaseUrls(config);
  const db = createDb(urls.app, config.DATABASE_POOL_MAX);
  const mailer = createMailer({
    smtpUrl: config.SMTP_URL,
    from: config.MAIL_FROM,
    outboxDir: join(config.DATA_DIR, 'outbox'),
    tls: { mode: config.SMTP_TLS, caFile: config.SMTP_TLS_CA_FILE },
  });
  const keys = loadPayloadKeys(config);
  if (keys) log.info({ encryptionKeyId: keys.current.id, decryptionKeyIds: [...keys.all.keys()] }, 'payload encryption on');
  else log.warn('payload encryption is off: no PAYLOAD_KEYS or PAYLOAD_KEYS_FILE');
  if (keys && config.PAYLOAD_ALLOW_CLEAR) log.warn('PAYLOAD_ALLOW_CLEAR is on: unencrypted payloads are accepted');
  const auditChain = auditChainFromConfig(config);
  if (!auditChain) log.warn('audit chain key not configured (AUDIT_CHAIN_KEY_FILE): the audit trail is neither sealed nor anchored');
  const dataConverter = dataConverterFor(keys, { allowClear: config.PAYLOAD_ALLOW_CLEAR === true, side: 'worker' });
  const temporalOptions = temporalConnectionOptions(config);
  const clientConnection = await Connection.connect(temporalOptions);
  const added = await ensureSearchAttributes(clientConnection, config.TEMPORAL_NAMESPACE);
  if (added.length) log.info({ added }, 'search attributes registered');
  // Runs upsert these attributes: until the server can resolve them, their workflow tasks would fail.
  const waitedMs = await waitUntilSearchAttributesUsable(clientConnection, config.TEMPORAL_NAMESPACE, {
    timeoutMs: SEARCH_ATTRIBUTES_TIMEOUT_MS,
    onWait: (reason, waited) => log.info({ reason, waitedMs: waited }, 'waiting for the search attributes to become usable'),
  });
  log.info({ waitedMs }, 'search attributes usable');
  if (config.SCHEDULES) {
    await ensureSchedules(
      new Client({ connection: clientConnection, namespace: config.TEMPORAL_NAMESPACE, dataConverter }),
      config.TEMPORAL_TASK_QUEUE,
      log,
      config,
      // An alert that cannot be written is logged; it is no reason to stop either.
      (undecodable) =>
        alertUndecodableSchedules({ db, mailer, mailDomain: mailDomainOf(config.MAIL_FROM), log }, undecodable).catch((err: unknown) =>
          log.error({ err }, 'could not alert operators about undecodable schedules'),
        ),
    );
  }

  const deployment = workerDeploymentFromConfig(config);
  const bell = createEventBell();
  const connection = await NativeConnection.connect(temporalOptions);
  const worker = await createWorker({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    activities: createActivities({
      db,
      mailer,
      publicUrl: config.PUBLIC_URL,
      lab: { name: config.LAB_NAME, address: config.LAB_ADDRESS },
      mailDomain: mailDomainOf(config.MAIL_FROM),
      erp: erpSetupFromConfig(config, db),
      llm: llmSetupFromConfig(config),
      auditChain,
      backupDatabaseUrl: urls.backup,
      webhooks: { ...webhookSettings(config), ownOrigins: [config.PUBLIC_URL], bell },
      notices: { settings: noticeSettings(config), twilio: twilioSettings(config) },
    }),
    workflowBundle: bundlePath ? { codePath: bundlePath } : undefined,
    dataConverter,
    deployment,
    maxCachedWorkflows: config.WORKER_MAX_CACHED_WORKFLOWS,
  });
  log.info(
    { taskQueue: config.TEMPORAL_TASK_QUEUE, deployment: deployment ?? null, metricsPort: config.WORKER_METRICS_PORT || null },
    'worker polling',
  );
  const wakeups = await startWebhookWakeups({
    databaseUrl: urls.app,
    db,
    temporal: new Client({ connection: clientConnection, namespace: config.TEMPORAL_NAMESPACE, dataConverter }),
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    settings: webhookSettings(config),
    log,
    bell,
  });
  // The runtime shuts the worker down on SIGINT/SIGTERM; run() resolves once in-flight tasks are done.
  await worker.run();
  await wakeups.close();
  await connection.close();
  await clientConnection.close();
  mailer.close();
  await db.destroy();
  log.info('worker stopped');
}

main().catch((err) => {
  process.stderr.write(`worker failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
