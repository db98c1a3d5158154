import { createHash } from 'node:crypto';
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type { Knex } from 'knex';
import type { Config } from '../common/config';
import { durationMs } from '../common/durations';
import { afterCursor, ErpFailure, type ErpCursor, type ErpEntity, type ErpSyncMode } from '../common/erp-sync';
import { appendAudit } from '../db/audit';
import {
  beginRun,
  finishRun,
  knownNames,
  localKeys,
  readCursor,
  recordDrift,
  retryRequested,
  storePage,
  type PageResult,
} from '../db/erp-sync';
import type { Db } from '../db/knex';
import { queueNotifications } from '../db/notifications';
import { resolveRecipients } from '../db/recipients';
import type { ActivityDeps } from './deps';
import type { ErpAdapter, ErpPage, ErpRecord, RefusedRecord } from './erp/adapter';
import { ErpNextAdapter } from './erp/erpnext';
import { SharedRateBudget } from './erp/rate-budget';
import { activityKey } from './keys';

/** The ERP as the activities see it: an adapter (null when no ERP is configured) and how its site writes time. */
export interface ErpSetup {
  adapter: ErpAdapter | null;
  timeZone: string;
  pageSize: number;
}

/** The worker's ERP; with `db`, its request budget is the one every worker shares for that site. */
export function erpSetupFromConfig(config: Config, db?: Db): ErpSetup {
  return {
    adapter: config.ERP_URL
      ? new ErpNextAdapter({
          url: config.ERP_URL,
          apiKey: config.ERP_API_KEY ?? '',
          apiSecret: config.ERP_API_SECRET ?? '',
          timeoutMs: durationMs(config.ERP_TIMEOUT),
          ratePerSecond: config.ERP_RATE_LIMIT,
          budget: db ? new SharedRateBudget(db, new URL(config.ERP_URL).origin, config.ERP_RATE_LIMIT) : undefined,
        })
      : null,
    timeZone: config.ERP_TIME_ZONE,
    pageSize: config.ERP_PAGE_SIZE,
  };
}

const NO_ERP: ErpSetup = { adapter: null, timeZone: 'UTC', pageSize: 500 };

/** The ERP the worker was given (one adapter, so one rate budget, for every ERP call); none when not configured. */
export function resolveErp(deps: { erp?: ErpSetup }): ErpSetup {
  return deps.erp ?? NO_ERP;
}

/**
 * Tells IT operators and admins (in-app and by email, through the outbox) that the ERP refused labflow's API key,
 * with an audit event, once per `key`. Returns the outbox IDs to deliver after the transaction commits.
 */
export async function alertErpAuthRefused(
  trx: Knex.Transaction,
  deps: Pick<ActivityDeps, 'mailDomain'>,
  alert: { key: string; what: string; error: string; link?: string },
): Promise<string[]> {
  await appendAudit(trx, {
    actor: 'system:erp-sync',
    action: 'erp.auth_refused',
    entityType: 'erp_sync',
    entityId: alert.key,
    details: { what: alert.what, error: alert.error },
    idempotencyKey: alert.key,
  });
  return queueNotifications(
    trx,
    await resolveRecipients(trx, [
      { kind: 'role', role: 'it_operator' },
      { kind: 'role', role: 'admin' },
    ]),
    {
      idempotencyKey: alert.key,
      kind: 'erp.auth_refused',
      title: "The ERP refused labflow's API key",
      body:
        `${alert.what} failed: ${alert.error}\n\nThe ERP no longer accepts the API key of labflow's integration user ` +
        '(revoked, regenerated or the user disabled). Issue a new key and secret in the ERP, set ERP_API_KEY and ' +
        'ERP_API_SECRET, restart the workers, then start a sync again (POST /api/v1/erp-sync/runs).',
      link: alert.link,
    },
    deps.mailDomain,
  );
}

type Counts = Omit<PageResult, 'cursor'>;
const add = (a: Counts, b: Counts): Counts => ({
  fetched: a.fetched + b.fetched,
  stored: a.stored + b.stored,
  deadLettered: a.deadLettered + b.deadLettered,
  deleted: a.deleted + b.deleted,
  inspectionHooks: a.inspectionHooks + b.inspectionHooks,
});
const zero: Counts = { fetched: 0, stored: 0, deadLettered: 0, deleted: 0, inspectionHooks: 0 };

/**
 * The ERP sync's activities. `deps.erp` is injected by tests and benches; otherwise the worker's configuration is
 * read once, on first use (ActivityDeps has no ERP field yet).
 */
export function erpSyncActivities(deps: ActivityDeps) {
  const { db } = deps;
  const erp = () => resolveErp(deps);
  const adapter = (): ErpAdapter => {
    const a = erp().adapter;
    if (!a)
      throw ApplicationFailure.create({ type: ErpFailure.NotConfigured, message: 'no ERP is configured (ERP_URL)', nonRetryable: true });
    return a;
  };

  return {
    /** Records the run; false when no ERP is configured (the scheduled run then ends at once). */
    async beginErpSyncRun(run: { syncRunId: string; workflowId: string; scope: string; mode: ErpSyncMode; requestedBy: string }) {
      if (!erp().adapter) return false;
      await beginRun(db, { id: run.syncRunId, workflowId: run.workflowId, scope: run.scope, mode: run.mode, requestedBy: run.requestedBy });
      return true;
    },

    /**
     * Closes the run's record. A run the ERP failed because it refused labflow's API key also alerts IT operators and
     * admins (in-app and by email, once per run); the caller delivers the returned outbox messages.
     */
    async finishErpSyncRun(p: {
      syncRunId: string;
      scope?: string;
      state: 'completed' | 'failed';
      error?: string;
      errorType?: string;
    }): Promise<{ outboxIds: string[] }> {
      return db.transaction(async (trx) => {
        await finishRun(trx, p.syncRunId, p);
        if (p.state !== 'failed' || p.errorType !== ErpFailure.Auth) return { outboxIds: [] };
        return {
          outboxIds: await alertErpAuthRefused(trx, deps, {
            key: `erp-auth-refused:sync:${p.syncRunId}`,
            what: `ERP sync run ${p.syncRunId}${p.scope ? ` (${p.scope})` : ''}`,
            error: p.error ?? '',
            link: `${deps.publicUrl}/api/v1/erp-sync/runs/${p.syncRunId}`,
          }),
        };
      });
    },

    /**
     * Pages through one entity's changes from its cursor, storing each page in its own transaction (which also
     * moves the cursor), until the list ends or maxPages were stored. The next page is fetched while the current
     * one is written. Heartbeats carry the cursor.
     */
    async syncErpEntity(p: { syncRunId: string; entity: ErpEntity; pageSize?: number; maxPages: number }) {
      const erpAdapter = adapter();
      const { timeZone } = erp();
      const pageSize = p.pageSize ?? erp().pageSize;
      const ctx = Context.current();
      let cursor: ErpCursor | null = await readCursor(db, p.entity);
      if (ctx.info.attempt > 1) log.info('resuming ERP sync', { entity: p.entity, cursor, heartbeat: ctx.info.heartbeatDetails });
      let totals = zero;
      let pages = 0;
      // As soon as a page arrives, which of its rows labflow has is looked up on another connection, while the page
      // before it is still being written (storePage guards against a row stored in between).
      type Fetched = ErpPage & { known?: Set<string> };
      const fetchPage = async (from: ErpCursor | null): Promise<Fetched> => {
        const page = await erpAdapter.fetchChanges(p.entity, from, pageSize);
        const names = page.records.map((r) => r.name);
        return { ...page, known: p.entity === 'deletions' ? undefined : await knownNames(db, p.entity, names) };
      };
      let pending: Promise<Fetched> | null = fetchPage(cursor);
      while (pending) {
        const page: Fetched = await pending;
        const from: ErpCursor | null = page.last && afterCursor(page.last, cursor) ? page.last : cursor;
        pending = !page.end && pages + 1 < p.maxPages ? fetchPage(from) : null;
        pending?.catch(() => undefined); // awaited on the next turn; a failure there fails this attempt
        const result = await storePage(db, {
          entity: p.entity,
          syncRunId: p.syncRunId,
          records: page.records,
          refused: page.refused,
          last: page.last,
          timeZone,
          auditKey: activityKey(`${page.last?.modified ?? ''}|${page.last?.name ?? ''}`),
          known: page.known,
        });
        cursor = result.cursor;
        totals = add(totals, result);
        pages += 1;
        ctx.heartbeat({ entity: p.entity, cursor, pages });
        if (page.end) return { done: true, pages, cursor, ...totals };
      }
      return { done: false, pages, cursor, ...totals };
    },

    /** Re-fetches the records operators asked to retry (their current version) and stores those that now pass. */
    async retryErpDeadLetters(p: { syncRunId: string; entity: ErpEntity }) {
      const wanted = await retryRequested(db, p.entity);
      if (!wanted.length || p.entity === 'deletions') return { retried: 0, stored: 0 };
      const erpAdapter = adapter();
      const records: ErpRecord[] = [];
      const refused: RefusedRecord[] = [];
      const gone: string[] = [];
      for (const row of wanted) {
        const found = await erpAdapter.fetchOne(p.entity, row.erp_name);
        if (!found) gone.push(row.id);
        else if ('reason' in found) refused.push(found);
        else records.push(found);
      }
      if (gone.length) {
        await db('erp_dead_letters')
          .whereIn('id', gone)
          .update({ state: 'discarded', closed_at: db.fn.now(), closed_by: 'system:erp-sync', close_reason: 'no longer in the ERP' });
      }
      const result = await storePage(db, {
        entity: p.entity,
        syncRunId: p.syncRunId,
        records,
        refused,
        last: null,
        timeZone: erp().timeZone,
        auditKey: activityKey(),
        retry: true,
      });
      return { retried: wanted.length, stored: result.stored };
    },

    /** Compares the ERP's live records with labflow's by count and hash; names a sample of what differs. */
    async reconcileErpEntity(p: { syncRunId: string; entity: Exclude<ErpEntity, 'deletions'>; pageSize?: number }) {
      const erpAdapter = adapter();
      const pageSize = p.pageSize ?? erp().pageSize;
      const remote = new Map<string, string>();
      for (let after: string | null = null; ;) {
        const keys = await erpAdapter.listKeys(p.entity, after, pageSize);
        for (const k of keys) remote.set(k.name, `${k.modified}|${k.docstatus}`);
        Context.current().heartbeat({ entity: p.entity, read: remote.size });
        if (keys.length < pageSize) break;
        after = keys[keys.length - 1].name;
      }
      const local = new Map((await localKeys(db, p.entity)).map((k) => [k.name, `${k.modified}|${k.docstatus}`]));
      const digest = (m: Map<string, string>) =>
        createHash('sha256')
          .update(
            [...m.entries()]
              .map(([name, v]) => `${name}|${v}`)
              .sort()
              .join('\n'),
          )
          .digest('hex');
      const missing = [...remote.keys()].filter((n) => !local.has(n));
      const extra = [...local.keys()].filter((n) => !remote.has(n));
      const stale = [...remote.keys()].filter((n) => local.has(n) && local.get(n) !== remote.get(n));
      const drift = {
        erpCount: remote.size,
        labflowCount: local.size,
        erpHash: digest(remote),
        labflowHash: digest(local),
        inSync: missing.length === 0 && extra.length === 0 && stale.length === 0,
        missing: missing.length,
        extra: extra.length,
        stale: stale.length,
        sample: { missing: missing.slice(0, 20), extra: extra.slice(0, 20), stale: stale.slice(0, 20) },
      };
      await recordDrift(db, p.syncRunId, p.entity, drift);
      if (!drift.inSync) log.warn('ERP drift', { entity: p.entity, missing: missing.length, extra: extra.length, stale: stale.length });
      return { entity: p.entity, inSync: drift.inSync, missing: drift.missing, extra: drift.extra, stale: drift.stale };
    },
  };
}
