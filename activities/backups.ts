import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Context, log } from '@temporalio/activity';
import type { BackupSettings, BackupTier } from '../common/scheduled-work';
import { appendAudit } from '../db/audit';
import type { Db } from '../db/knex';
import { queueNotifications } from '../db/notifications';
import { resolveRecipients } from '../db/recipients';
import {
  copyAndVerify,
  encryptFile,
  fileSize,
  freeBytes,
  isPermanentPgError,
  parseToolVersion,
  pgTarget,
  runTool,
  readKeyFile,
  sha256File,
  ToolError,
  toolOutput,
} from './backup-tools';
import { planRetention } from './backup-retention';
import { restoreDrillActivities } from './backup-drill';
import { BACKUP_ACTOR, backupFailure, databaseUrlOf, heartbeating } from './backup-support';
import type { ActivityDeps } from './deps';
import { activityKey } from './keys';

export { databaseUrlOf } from './backup-support';

const paths = (dir: string, id: string) => ({
  partial: join(dir, `${id}.dump.partial`),
  dump: join(dir, `${id}.dump`),
  encrypted: join(dir, `${id}.dump.enc`),
  globalsPartial: join(dir, `${id}.globals.sql.partial`),
  globals: join(dir, `${id}.globals.sql`),
  globalsEncrypted: join(dir, `${id}.globals.sql.enc`),
});

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

async function backupRow(db: Db, id: string) {
  const row = await db('backups').where({ id }).first();
  if (!row) throw backupFailure('BackupNotFound', `backup ${id} is not recorded`);
  return row;
}

export function backupActivities({ db, mailDomain, auditChain, backupDatabaseUrl }: ActivityDeps) {
  const source = () => backupDatabaseUrl ?? databaseUrlOf(db);

  return {
    /** Records the attempt (once, however often it is retried). */
    async backupBegin(input: {
      backupId: string;
      workflowId: string;
      trigger: 'scheduled' | 'manual';
      requestedBy: string | null;
      takenAt: string;
      settings: BackupSettings;
    }): Promise<void> {
      await db.transaction(async (trx) => {
        const inserted = await trx('backups')
          .insert({
            id: input.backupId,
            workflow_id: input.workflowId,
            trigger: input.trigger,
            requested_by: input.requestedBy,
            taken_at: input.takenAt,
            database_name: pgTarget(source()).database,
            compression: input.settings.compression,
          })
          .onConflict('id')
          .ignore()
          .returning('id');
        if (inserted.length)
          await appendAudit(trx, {
            actor: input.requestedBy ?? BACKUP_ACTOR,
            action: 'backup.started',
            entityType: 'backup',
            entityId: input.backupId,
            details: { trigger: input.trigger, workflowId: input.workflowId },
            idempotencyKey: activityKey(),
          });
      });
    },

    /** Free space at the destinations, and a pg_dump no older than the server. */
    async backupPreflight(input: { backupId: string; settings: BackupSettings }) {
      const { settings } = input;
      const dirs = [settings.dir, ...(settings.offsiteDir ? [settings.offsiteDir] : [])];
      for (const dir of dirs) await mkdir(dir, { recursive: true });
      const target = pgTarget(source(), settings.pgUser);
      const tool = parseToolVersion(await toolOutput('pg_dump', ['--version']));
      const server = await db.raw(`select current_setting('server_version') as version, current_setting('server_version_num')::int as num,
        pg_database_size(current_database()) as size`);
      const { version: serverVersion, num, size } = server.rows[0] as { version: string; num: number; size: number };
      const serverMajor = Math.floor(num / 10000);
      await db('backups').where({ id: input.backupId }).update({ server_version: serverVersion, pg_dump_version: tool.version });
      if (tool.major < serverMajor)
        throw backupFailure(
          'BackupPreflightFailed',
          `pg_dump ${tool.version} is older than the server (${serverVersion}); install pg_dump ${serverMajor} or newer`,
        );
      const last = await db('backups').where({ state: 'verified' }).orderBy('taken_at', 'desc').first('dump_bytes');
      // A compressed dump is smaller than the database; twice the last one (or the database size) leaves room for growth.
      const needed = Math.round(last?.dump_bytes ? last.dump_bytes * 2 : size);
      const free: Record<string, number> = {};
      for (const dir of dirs) {
        free[dir] = await freeBytes(dir);
        if (free[dir] < needed)
          throw backupFailure('BackupPreflightFailed', `${dir} has ${free[dir]} bytes free, a backup needs about ${needed}`);
      }
      return { serverVersion, pgDumpVersion: tool.version, neededBytes: needed, free, database: target.database };
    },

    /**
     * pg_dump -Fc and pg_dumpall --globals-only into '.partial' files. Only a clean exit of each process, with a
     * non-empty file, counts; a retry (after a crash) starts the dump again from the beginning.
     */
    async backupDump(input: { backupId: string; settings: BackupSettings }) {
      const { settings, backupId } = input;
      const p = paths(settings.dir, backupId);
      const target = pgTarget(source(), settings.pgUser);
      await Promise.all([rm(p.partial, { force: true }), rm(p.globalsPartial, { force: true })]);
      const ctx = Context.current();
      const stop = heartbeating(async () => ({ phase: 'dump', bytes: (await fileSize(p.partial)) ?? 0 }));
      try {
        await runTool(
          'pg_dump',
          ['--format=custom', `--compress=${settings.compression}`, '--no-password', `--file=${p.partial}`, `--dbname=${target.url}`],
          { env: target.env, signal: ctx.cancellationSignal },
        );
        await runTool(
          'pg_dumpall',
          ['--globals-only', '--no-role-passwords', '--no-password', `--file=${p.globalsPartial}`, `--dbname=${target.url}`],
          {
            env: target.env,
            signal: ctx.cancellationSignal,
          },
        );
      } catch (err) {
        await Promise.all([rm(p.partial, { force: true }), rm(p.globalsPartial, { force: true })]);
        if (err instanceof ToolError) throw backupFailure('BackupDumpFailed', err.message, !isPermanentPgError(err.stderr));
        throw err;
      } finally {
        stop();
      }
      const [dumpBytes, globalsBytes] = [await fileSize(p.partial), await fileSize(p.globalsPartial)];
      if (!dumpBytes) throw backupFailure('BackupDumpFailed', 'pg_dump exited cleanly but wrote nothing', true);
      log.info('dump written', { backupId, dumpBytes, globalsBytes });
      return { dumpBytes, globalsBytes: globalsBytes ?? 0 };
    },

    /** pg_restore --list must parse it, its size must sit in the band around the last good one; SHA-256 recorded. */
    async backupVerify(input: { backupId: string; settings: BackupSettings }) {
      const { settings, backupId } = input;
      const p = paths(settings.dir, backupId);
      // After a crash between rename and record the final names already hold the dump.
      const dumpFile = (await exists(p.partial)) ? p.partial : p.dump;
      const globalsFile = (await exists(p.globalsPartial)) ? p.globalsPartial : p.globals;
      let toc = 0;
      // Listing and hashing read the same file; run them side by side.
      const stop = heartbeating(() => ({ phase: 'verify' }));
      const hashes = Promise.all([sha256File(dumpFile), sha256File(globalsFile)]);
      hashes.catch(() => undefined);
      try {
        await runTool('pg_restore', ['--list', dumpFile], { onLine: (line) => (toc += line && !line.startsWith(';') ? 1 : 0) });
      } catch (err) {
        stop();
        throw backupFailure('BackupVerificationFailed', `pg_restore --list refused the dump: ${(err as Error).message}`);
      }
      if (toc === 0) {
        stop();
        throw backupFailure('BackupVerificationFailed', 'the dump lists no entries');
      }
      const dumpBytes = (await fileSize(dumpFile))!;
      const last = await db('backups')
        .where({ state: 'verified' })
        .whereNot({ id: backupId })
        .orderBy('taken_at', 'desc')
        .first('id', 'dump_bytes');
      const ratio = last?.dump_bytes ? dumpBytes / last.dump_bytes : null;
      const [sha, globalsSha] = await hashes.finally(stop);
      await db('backups')
        .where({ id: backupId })
        .update({
          dump_bytes: dumpBytes,
          dump_sha256: sha,
          globals_bytes: (await fileSize(globalsFile)) ?? 0,
          globals_sha256: globalsSha,
          toc_entries: toc,
          size_ratio: ratio,
        });
      if (ratio !== null && Math.abs(ratio - 1) * 100 > settings.sizeBandPercent)
        throw backupFailure(
          'BackupVerificationFailed',
          `the dump is ${dumpBytes} bytes, ${Math.round(ratio * 100)}% of the last good backup (${last!.id}); the band is ±${settings.sizeBandPercent}%`,
        );
      await rename(dumpFile, p.dump);
      await rename(globalsFile, p.globals);
      await db('backups').where({ id: backupId }).update({ dump_path: p.dump, globals_path: p.globals });
      return { tocEntries: toc, sha256: sha, dumpBytes, sizeRatio: ratio };
    },

    /** Encrypts at rest when a key is configured, then copies off-site and re-checks the hash there. */
    async backupShip(input: { backupId: string; settings: BackupSettings }) {
      const { settings, backupId } = input;
      const p = paths(settings.dir, backupId);
      const row = await backupRow(db, backupId);
      const stop = heartbeating(() => ({ phase: 'ship' }));
      try {
        let stored = [
          { path: p.dump, sha: row.dump_sha256 as string },
          { path: p.globals, sha: row.globals_sha256 as string },
        ];
        if (settings.encryptionKeyFile) {
          const { key, fingerprint } = await readKeyFile(settings.encryptionKeyFile);
          const targets = [p.encrypted, p.globalsEncrypted];
          const done = row.encrypted && (await exists(p.encrypted)) && (await exists(p.globalsEncrypted));
          if (!done) {
            for (const [i, item] of stored.entries()) {
              await encryptFile(item.path, `${targets[i]}.partial`, key);
              await rename(`${targets[i]}.partial`, targets[i]);
            }
          }
          const shas = [await sha256File(p.encrypted), await sha256File(p.globalsEncrypted)];
          await db('backups').where({ id: backupId }).update({
            encrypted: true,
            key_fingerprint: fingerprint,
            dump_path: p.encrypted,
            globals_path: p.globalsEncrypted,
            stored_sha256: shas[0],
            globals_stored_sha256: shas[1],
          });
          await Promise.all([rm(p.dump, { force: true }), rm(p.globals, { force: true })]);
          stored = [
            { path: p.encrypted, sha: shas[0] },
            { path: p.globalsEncrypted, sha: shas[1] },
          ];
        } else {
          await db('backups').where({ id: backupId }).update({ stored_sha256: stored[0].sha, globals_stored_sha256: stored[1].sha });
        }
        if (!settings.offsiteDir) return { encrypted: !!settings.encryptionKeyFile, offsitePath: null };
        const offsite = stored.map((s) => join(settings.offsiteDir!, basename(s.path)));
        for (const [i, item] of stored.entries()) {
          await copyAndVerify(item.path, `${offsite[i]}.partial`, item.sha).catch((err: Error) => {
            throw backupFailure('BackupOffsiteFailed', err.message, true);
          });
          await rename(`${offsite[i]}.partial`, offsite[i]);
        }
        await db('backups')
          .where({ id: backupId })
          .update({ offsite_path: offsite[0], offsite_globals_path: offsite[1], offsite_verified_at: db.fn.now() });
        return { encrypted: !!settings.encryptionKeyFile, offsitePath: offsite[0] };
      } finally {
        stop();
      }
    },

    /** The backup is good: it now counts toward retention. */
    async backupMarkVerified(input: { backupId: string }): Promise<{ dumpBytes: number; sha256: string }> {
      return db.transaction(async (trx) => {
        const row = await trx('backups').where({ id: input.backupId }).forNoKeyUpdate().first();
        if (row.state === 'running') {
          await trx('backups')
            .where({ id: input.backupId })
            .update({
              state: 'verified',
              verified_at: trx.fn.now(),
              finished_at: trx.fn.now(),
              duration_ms: trx.raw('(extract(epoch from (now() - started_at)) * 1000)::int'),
            });
          await appendAudit(trx, {
            actor: BACKUP_ACTOR,
            action: 'backup.verified',
            entityType: 'backup',
            entityId: input.backupId,
            details: { bytes: row.dump_bytes, sha256: row.dump_sha256, encrypted: row.encrypted, offsite: row.offsite_path },
            idempotencyKey: activityKey(),
          });
        }
        return { dumpBytes: Number(row.dump_bytes), sha256: row.dump_sha256 };
      });
    },

    /** Grandfather-father-son over verified backups without a legal hold; expired ones lose their files. */
    async backupApplyRetention(input: { settings: BackupSettings; newestBackupId: string }) {
      const { settings } = input;
      const newest = await backupRow(db, input.newestBackupId);
      if (newest.state !== 'verified')
        throw backupFailure('BackupRetentionRefused', 'retention runs only after the newest backup verified');
      const candidates = await db('backups')
        .where({ state: 'verified', legal_hold: false })
        .select('id', 'taken_at', 'dump_path', 'globals_path', 'offsite_path', 'offsite_globals_path');
      const plan = planRetention(
        candidates.map((c) => ({ id: c.id, takenAt: new Date(c.taken_at).toISOString() })),
        settings.retention,
        settings.timeZone,
      );
      const expiring = candidates.filter((c) => plan.expire.includes(c.id));
      for (const c of expiring)
        for (const path of [c.dump_path, c.globals_path, c.offsite_path, c.offsite_globals_path]) if (path) await rm(path, { force: true });
      await db.transaction(async (trx) => {
        for (const tier of ['daily', 'weekly', 'monthly'] as BackupTier[]) {
          const ids = [...plan.keep].filter(([, t]) => t === tier).map(([id]) => id);
          if (ids.length) await trx('backups').whereIn('id', ids).update({ tier });
        }
        if (plan.expire.length)
          await trx('backups')
            .whereIn('id', plan.expire)
            .where('state', 'verified')
            .update({ state: 'expired', tier: null, expired_at: trx.fn.now() });
        await appendAudit(trx, {
          actor: BACKUP_ACTOR,
          action: 'backup.retention_applied',
          entityType: 'backup',
          entityId: input.newestBackupId,
          details: { kept: plan.keep.size, expired: plan.expire, rules: settings.retention },
          idempotencyKey: activityKey(),
        });
      });
      return { kept: plan.keep.size, expired: plan.expire.length };
    },

    /** A failed backup: recorded as such, its files removed (nothing half-made looks good), IT operators told. */
    async backupMarkFailed(input: { backupId: string; settings: BackupSettings; reason: string }): Promise<{ outboxIds: string[] }> {
      const p = paths(input.settings.dir, input.backupId);
      for (const path of Object.values(p)) await rm(path, { force: true });
      const reason = input.reason.slice(0, 4000);
      return db.transaction(async (trx) => {
        const updated = await trx('backups')
          .where({ id: input.backupId })
          .whereIn('state', ['running', 'failed'])
          .update({
            state: 'failed',
            failure: reason,
            finished_at: trx.fn.now(),
            dump_path: null,
            globals_path: null,
            duration_ms: trx.raw('(extract(epoch from (now() - started_at)) * 1000)::int'),
          });
        if (!updated) return { outboxIds: [] };
        const key = activityKey();
        await appendAudit(trx, {
          actor: BACKUP_ACTOR,
          action: 'backup.failed',
          entityType: 'backup',
          entityId: input.backupId,
          details: { reason },
          idempotencyKey: key,
        });
        const outboxIds = await queueNotifications(
          trx,
          await resolveRecipients(trx, [{ kind: 'role', role: 'it_operator' }]),
          {
            idempotencyKey: `backup-failed:${input.backupId}`,
            kind: 'backup.failed',
            title: 'Backup failed',
            body: `Backup ${input.backupId} failed: ${reason}`,
          },
          mailDomain,
        );
        return { outboxIds };
      });
    },

    ...restoreDrillActivities({ db, mailDomain, auditChain, backupDatabaseUrl }),
  };
}
