import type { Knex } from 'knex';
import type { Actor } from '../common/roles';
import type { ChecklistItem } from '../common/document-precheck';
import { appendAudit } from './audit';

export interface Checklist {
  docType: string;
  version: number;
  items: ChecklistItem[];
  createdBy: string | null;
  createdAt: string;
}

type Row = { doc_type: string; version: number; items: ChecklistItem[]; created_by_username?: string | null; created_at: Date };

const toChecklist = (row: Row): Checklist => ({
  docType: row.doc_type,
  version: row.version,
  items: row.items,
  createdBy: row.created_by_username ?? null,
  createdAt: new Date(row.created_at).toISOString(),
});

/** The checklist a pre-check of this document type uses now: its latest version. */
export async function latestChecklist(db: Knex, docType: string): Promise<Checklist | undefined> {
  const row = await db('precheck_checklists as c')
    .leftJoin('users as u', 'u.id', 'c.created_by')
    .where('c.doc_type', docType)
    .orderBy('c.version', 'desc')
    .first('c.*', 'u.username as created_by_username');
  return row ? toChecklist(row) : undefined;
}

/** Every version of a type's checklist, newest first. */
export async function checklistHistory(db: Knex, docType: string): Promise<Checklist[]> {
  const rows = await db('precheck_checklists as c')
    .leftJoin('users as u', 'u.id', 'c.created_by')
    .where('c.doc_type', docType)
    .orderBy('c.version', 'desc')
    .select('c.*', 'u.username as created_by_username');
  return rows.map(toChecklist);
}

/**
 * A new version of a type's checklist, audited with the items before and after. Versions are never changed: a
 * pre-check records the version it used. Two saves at once: the second one's insert conflicts and it is retried.
 */
export async function saveChecklist(db: Knex, actor: Actor, docType: string, items: ChecklistItem[]): Promise<Checklist> {
  return db.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`precheck-checklist:${docType}`]);
    const previous = await trx('precheck_checklists').where({ doc_type: docType }).orderBy('version', 'desc').first();
    const version = (previous?.version ?? 0) + 1;
    await trx('precheck_checklists').insert({ doc_type: docType, version, items: JSON.stringify(items), created_by: actor.userId });
    await appendAudit(trx, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'precheck_checklist.saved',
      entityType: 'precheck_checklist',
      entityId: docType,
      details: { version, before: previous?.items ?? null, after: items },
    });
    return (await latestChecklist(trx, docType))!;
  });
}

/** The pre-check of a version as reviewers see it; undefined when none was started. */
export async function precheckOfVersion(db: Knex, versionId: string) {
  const row = await db('document_prechecks').where({ document_version_id: versionId }).first();
  if (!row) return undefined;
  return {
    workflowId: row.workflow_id as string,
    stage: row.stage as string,
    failure: row.failure as string | null,
    advisory: true as const,
    contentHash: row.content_hash as string,
    checklist: { docType: row.doc_type as string, version: row.checklist_version as number | null },
    findings: row.findings,
    dropped: { count: (row.dropped as unknown[]).length, items: row.dropped },
    provenance: {
      source: row.source as string | null,
      aiGenerated: row.ai_generated as boolean | null,
      model: row.model as string | null,
      promptVersion: row.prompt_version as string | null,
      promptHash: row.prompt_hash as string | null,
      fallbackUsed: row.fallback_used as boolean | null,
      attempts: row.attempts,
    },
    startedAt: new Date(row.started_at).toISOString(),
    completedAt: row.completed_at ? new Date(row.completed_at).toISOString() : null,
  };
}
