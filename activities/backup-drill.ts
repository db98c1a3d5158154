import { log } from '@temporalio/activity';
import type { BackupSettings, RestoreDrillResult } from '../common/scheduled-work';
import { appendAudit, verifyAuditChain } from '../db/audit';
import { readNewestCheckpoint } from '../db/audit-chain';
import { createDb, dropDatabase, ensureDatabase } from '../db/knex';
import { queueNotifications } from '../db/notifications';
import { resolveRecipients } from '../db/recipients';
import { restoreDump } from './backup-restore';
import { BACKUP_ACTOR, backupFailure, databaseUrlOf, heartbeating } from './backup-support';
import { auditVerdictProblem } from './audit';
import { withDatabase } from './backup-tools';
import type { ActivityDeps } from './deps';
import { activityKey } from './keys';

export function restoreDrillActivities({
  db,
  mailDomain,
  auditChain,
  backupDatabaseUrl,
}: Pick<ActivityDeps, 'db' | 'mailDomain' | 'auditChain' | 'backupDatabaseUrl'>) {
  return {
    /**
     * Restores a verified backup into a scratch database, runs smoke queries (row counts of key tables, the audit
     * chain), records the restore time as RTO evidence, and drops the scratch database whatever happened.
     */
    async restoreDrill(input: {
      drillId: string;
      workflowId: string;
      settings: BackupSettings;
      backupId?: string;
    }): Promise<RestoreDrillResult & { outboxIds: string[] }> {
      const query = db('backups').where({ state: 'verified' });
      const backup = input.backupId ? await query.where({ id: input.backupId }).first() : await query.orderBy('taken_at', 'desc').first();
      if (!backup)
        throw backupFailure(
          'RestoreDrillFailed',
          input.backupId ? `backup ${input.backupId} is not a verified backup` : 'there is no verified backup to restore',
        );
      const scratch = `labflow_restore_drill_${input.drillId.replace(/-/g, '').slice(0, 12)}`;
      const scratchUrl = withDatabase(backupDatabaseUrl ?? databaseUrlOf(db), scratch);
      const result: RestoreDrillResult = {
        drillId: input.drillId,
        backupId: backup.id,
        ok: false,
        restoreMs: 0,
        rowCounts: {},
        auditChainOk: false,
        failure: null,
      };
      let chainProblem = '';
      const stop = heartbeating(() => ({ phase: 'restore-drill' }));
      try {
        await dropDatabase(scratchUrl);
        await ensureDatabase(scratchUrl);
        const started = Date.now();
        await restoreDump({ backup, targetUrl: scratchUrl, keyFile: input.settings.encryptionKeyFile, workDir: input.settings.dir });
        result.restoreMs = Date.now() - started;
        const scratchDb = createDb(scratchUrl, 1);
        try {
          for (const table of ['users', 'documents', 'document_versions', 'tasks', 'notifications', 'audit_events']) {
            const counted = await scratchDb(table).count({ n: '*' }).first();
            result.rowCounts[table] = Number(counted?.n ?? 0);
          }
          // Against the newest checkpoint taken before this backup: a later one anchors events the dump cannot hold.
          const anchor = auditChain ? readNewestCheckpoint(auditChain, new Date(backup.taken_at)) : undefined;
          const verdict = await verifyAuditChain(scratchDb, { chain: auditChain, anchor });
          result.auditChainOk = verdict.ok;
          if (!verdict.ok) chainProblem = auditVerdictProblem(verdict);
        } finally {
          await scratchDb.destroy();
        }
        result.ok = result.auditChainOk && result.rowCounts.audit_events > 0;
        if (!result.ok)
          result.failure = result.auditChainOk
            ? 'the restored audit trail is empty'
            : `the restored audit chain does not verify: ${chainProblem}`;
      } catch (err) {
        result.failure = (err as Error).message.slice(0, 4000);
      } finally {
        stop();
        await dropDatabase(scratchUrl).catch((err: Error) => log.warn('scratch database not dropped', { scratch, error: err.message }));
      }
      const outboxIds = await db.transaction(async (trx) => {
        await trx('restore_drills')
          .insert({
            id: input.drillId,
            backup_id: backup.id,
            workflow_id: input.workflowId,
            restore_ms: result.restoreMs,
            row_counts: JSON.stringify(result.rowCounts),
            audit_chain_ok: result.auditChainOk,
            ok: result.ok,
            failure: result.failure,
          })
          .onConflict('id')
          .merge();
        await appendAudit(trx, {
          actor: BACKUP_ACTOR,
          action: result.ok ? 'backup.restore_drill_passed' : 'backup.restore_drill_failed',
          entityType: 'backup',
          entityId: backup.id,
          details: { drillId: input.drillId, restoreMs: result.restoreMs, rowCounts: result.rowCounts, failure: result.failure },
          idempotencyKey: activityKey(),
        });
        if (result.ok) return [];
        return queueNotifications(
          trx,
          await resolveRecipients(trx, [{ kind: 'role', role: 'it_operator' }]),
          {
            idempotencyKey: `restore-drill-failed:${input.drillId}`,
            kind: 'backup.restore_drill_failed',
            title: 'Restore drill failed',
            body: `Restoring backup ${backup.id} failed: ${result.failure}`,
          },
          mailDomain,
        );
      });
      return { ...result, outboxIds };
    },
  };
}
