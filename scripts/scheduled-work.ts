import { resolve } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { restoreDump } from '../activities/backup-restore';
import { withDatabase } from '../activities/backup-tools';
import { databaseUrls, loadConfig } from '../common/config';
import { temporalConnectionOptions } from '../platform/temporal-connection';
import { verifyAuditChain } from '../db/audit';
import { createDb, ensureDatabase } from '../db/knex';
import { dataConverterFor, loadPayloadKeys } from '../platform/data-converter';
import { reconcileSchedules, scheduleDefinitions, scheduleSettingsFromConfig } from '../workers/schedules';

const USAGE = 'usage: npm run restore -- <backupId> --into <database>   |   npm run schedules [-- --dry-run]';

/** `restore <backupId> --into <db>`: restores one recorded backup into a new database (never over an existing one). */
async function restore(args: string[]): Promise<number> {
  const [backupId] = args;
  const into = args[args.indexOf('--into') + 1];
  if (!backupId || args.indexOf('--into') < 0 || !into) throw new Error(USAGE);
  const config = loadConfig();
  const urls = databaseUrls(config);
  const db = createDb(urls.app, 2);
  try {
    const backup = await db('backups').where({ id: backupId }).first();
    if (!backup) throw new Error(`no backup ${backupId} is recorded`);
    if (backup.state !== 'verified') throw new Error(`backup ${backupId} is ${backup.state}; only verified backups are restored`);
    // A new database is the server admin's to create; `npm run migrate` against it hands it to the owner role.
    const targetUrl = withDatabase(urls.admin, into);
    if (!(await ensureDatabase(targetUrl))) throw new Error(`database ${into} already exists; restore into a new database`);
    console.log(`restoring backup ${backupId} (taken ${new Date(backup.taken_at).toISOString()}) into ${into} …`);
    const started = Date.now();
    await restoreDump({
      backup,
      targetUrl,
      keyFile: config.BACKUP_ENCRYPTION_KEY_FILE ? resolve(config.BACKUP_ENCRYPTION_KEY_FILE) : null,
      workDir: resolve(config.BACKUP_DIR),
      jobs: 2,
    });
    const restored = createDb(targetUrl, 1);
    try {
      const verdict = await verifyAuditChain(restored);
      console.log(
        `✔ restored in ${((Date.now() - started) / 1000).toFixed(1)} s; audit chain ${verdict.ok ? `intact (${verdict.events} events)` : `BROKEN at ${verdict.firstBroken?.seq}`}`,
      );
      if (backup.globals_path)
        console.log(
          `  roles and settings: ${backup.globals_path}${backup.encrypted ? ' (encrypted)' : ''} (apply with psql if the server lacks them)`,
        );
      return verdict.ok ? 0 : 1;
    } finally {
      await restored.destroy();
    }
  } finally {
    await db.destroy();
  }
}

/** `schedules [--dry-run]`: reconciles the Temporal Schedules with the declarative list and prints the drift. */
async function schedules(args: string[]): Promise<number> {
  const config = loadConfig();
  const connection = await Connection.connect(temporalConnectionOptions(config));
  try {
    // Schedule actions carry workflow inputs, which the worker will decode.
    const dataConverter = dataConverterFor(loadPayloadKeys(config), { allowClear: config.PAYLOAD_ALLOW_CLEAR === true });
    const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE, dataConverter });
    const report = await reconcileSchedules(client, scheduleDefinitions(scheduleSettingsFromConfig(config)), {
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      dryRun: args.includes('--dry-run'),
    });
    for (const id of report.created) console.log(`${args.includes('--dry-run') ? 'would create' : 'created'}  ${id}`);
    for (const u of report.updated)
      console.log(`${args.includes('--dry-run') ? 'drifted' : 'updated'}  ${u.scheduleId}: ${u.drift.join(', ')}`);
    for (const id of report.deleted) console.log(`${args.includes('--dry-run') ? 'would delete' : 'deleted'}  ${id}`);
    for (const id of report.unchanged) console.log(`unchanged  ${id}`);
    return 0;
  } finally {
    await connection.close();
  }
}

const [command, ...rest] = process.argv.slice(2);
(command === 'restore' ? restore(rest) : command === 'schedules' ? schedules(rest) : Promise.reject(new Error(USAGE))).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(2);
  },
);
