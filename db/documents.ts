import type { Knex } from 'knex';
import { workflowIds } from '../common/ids';
import { OPEN_VERSION_STATES, type VersionState } from '../common/document-approval';
import type { Actor } from '../common/roles';
import { appendAudit } from './audit';
import { diff } from './field-changes';
import { sha256Hex } from './identity';
import type { Db } from './knex';
import { signaturesWithVoids, VOID_COLUMNS } from './signatures';

export class DocumentConflict extends Error {
  constructor(
    readonly kind: 'number-taken' | 'open-revision' | 'not-a-draft' | 'submission-in-progress',
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** The caller may not do this to this document (not its owner, not document control). */
export class DocumentForbidden extends Error {}

const isDocumentControl = (actor: Actor) => actor.roles.includes('document_control');

export async function createDocument(db: Db, actor: Actor, input: { title: string; docType: string; number?: string }) {
  return db.transaction(async (trx) => {
    const number =
      input.number ?? `DOC-${String((await trx.raw("select nextval('document_number_seq') as n")).rows[0].n).padStart(4, '0')}`;
    const [row] = await trx('documents')
      .insert({ number, title: input.title, doc_type: input.docType, owner_id: actor.userId })
      .onConflict('number')
      .ignore()
      .returning(['id', 'number', 'title', 'doc_type', 'created_at']);
    if (!row) throw new DocumentConflict('number-taken', `document ${number} already exists`);
    await appendAudit(trx, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'document.created',
      entityType: 'document',
      entityId: number,
      details: { title: input.title, docType: input.docType },
    });
    return row;
  });
}

export async function storeContent(trx: Knex | Knex.Transaction, content: string): Promise<string> {
  const hash = sha256Hex(content);
  await trx('document_contents').insert({ hash, content }).onConflict('hash').ignore();
  return hash;
}

export async function addVersion(db: Db, actor: Actor, documentId: string, number: string, content: string, changeSummary = '') {
  return db.transaction(async (trx) => {
    const document = await trx('documents').where({ id: documentId }).forNoKeyUpdate().first('id', 'owner_id');
    if (document?.owner_id !== actor.userId && !isDocumentControl(actor)) {
      throw new DocumentForbidden(`only the owner of ${number} or document control may add a version`);
    }
    const open = await trx('document_versions')
      .where({ document_id: documentId })
      .whereIn('state', OPEN_VERSION_STATES)
      .first('version', 'state');
    if (open) {
      throw new DocumentConflict('open-revision', `${number} already has an open revision (v${open.version}, ${open.state})`, {
        openVersion: open.version,
      });
    }
    const latest = await trx('document_versions').where({ document_id: documentId }).max('version as max').first();
    const version = ((latest?.max as number | null) ?? 0) + 1;
    const hash = await storeContent(trx, content);
    const [row] = await trx('document_versions')
      .insert({ document_id: documentId, version, content_hash: hash, author_id: actor.userId, change_summary: changeSummary })
      .returning(['id', 'version', 'content_hash', 'state', 'created_at']);
    await appendAudit(trx, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'document.version_created',
      entityType: 'document',
      entityId: number,
      details: { version, contentHash: hash, changeSummary },
    });
    return row;
  });
}

/**
 * Document control cancels a draft nobody submitted (withdrawn, with the reason); refused for a version that is
 * not a draft, or whose submission is under way. The audit event records each field it changed.
 */
export async function cancelDraft(db: Db, actor: Actor, number: string, version: number, reason: string) {
  return db.transaction(async (trx) => {
    const row = await trx('document_versions as v')
      .join('documents as d', 'd.id', 'v.document_id')
      .where({ 'd.number': number, 'v.version': version })
      .forNoKeyUpdate('v')
      .first('v.id', 'v.state', 'v.workflow_id', 'v.created_at', 'v.updated_at');
    if (!row) return undefined;
    if (row.state !== 'draft' || row.workflow_id) {
      throw new DocumentConflict('not-a-draft', `${number} v${version} is ${row.state}; only an unsubmitted draft can be cancelled`);
    }
    // The API writes the submission's grant before it starts the run: a draft with one is being submitted.
    const submitting = await trx('action_grants')
      .where({ workflow_id: workflowIds.documentApproval(number, version), action: 'document.submit' })
      .whereNull('consumed_at')
      .where('expires_at', '>', trx.fn.now())
      .first('id');
    if (submitting) throw new DocumentConflict('submission-in-progress', `${number} v${version} is being submitted`);
    const fields = ['state', 'closed_at'];
    const before = await trx('document_versions').where({ id: row.id }).first(fields);
    const [after] = await trx('document_versions')
      .where({ id: row.id })
      .update({ state: 'withdrawn', closed_at: trx.fn.now(), updated_at: trx.fn.now() })
      .returning(fields);
    const changes = diff(before, after, { fields });
    await appendAudit(trx, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'document.draft_cancelled',
      entityType: 'document',
      entityId: number,
      details: { version, reason, draftedAt: row.created_at, lastChangedAt: row.updated_at, changes },
    });
    return { number, version, state: after.state as VersionState, closedAt: after.closed_at as Date, changes };
  });
}

/** The fields of a document (not of its versions) that document control may change. */
export interface DocumentEdit {
  title?: string;
  docType?: string;
  ownerId?: string;
}

/** Changes a document's title, type or owner; the audit event records each field's old and new value. */
export async function updateDocument(db: Db, actor: Actor, number: string, edit: DocumentEdit) {
  return db.transaction(async (trx) => {
    const fields = ['title', 'doc_type', 'owner_id'];
    const before = await trx('documents').where({ number }).forNoKeyUpdate().first(['id', ...fields]);
    if (!before) return undefined;
    const values = Object.fromEntries(
      Object.entries({ title: edit.title, doc_type: edit.docType, owner_id: edit.ownerId }).filter(([, v]) => v !== undefined),
    );
    const [after] = Object.keys(values).length
      ? await trx('documents').where({ id: before.id }).update(values).returning(['id', ...fields])
      : [before];
    const changes = diff(before, after, { fields });
    if (changes.length) {
      await appendAudit(trx, {
        actorId: actor.userId,
        actor: actor.username,
        action: 'document.updated',
        entityType: 'document',
        entityId: number,
        details: { changes },
      });
    }
    return { changes };
  });
}

export async function findDocument(db: Db, number: string) {
  return db('documents as d')
    .join('users as u', 'u.id', 'd.owner_id')
    .where('d.number', number)
    .first('d.id', 'd.number', 'd.title', 'd.doc_type', 'd.owner_id', 'd.created_at', 'u.username as owner');
}

export interface VersionRow {
  id: string;
  document_id: string;
  number: string;
  title: string;
  doc_type: string;
  owner_id: string;
  version: number;
  content_hash: string;
  change_summary: string;
  author_id: string;
  author: string;
  state: VersionState;
  workflow_id: string | null;
  round: number;
  stage_name: string | null;
  assignees: string[];
  due_at: Date | null;
  effective_date: Date | null;
  submitted_at: Date | null;
  approved_at: Date | null;
  effective_at: Date | null;
  closed_at: Date | null;
  next_review_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export async function findVersion(db: Db, number: string, version: number): Promise<VersionRow | undefined> {
  return db('document_versions as v')
    .join('documents as d', 'd.id', 'v.document_id')
    .join('users as u', 'u.id', 'v.author_id')
    .where({ 'd.number': number, 'v.version': version })
    .first('v.*', 'd.number', 'd.title', 'd.doc_type', 'd.owner_id', 'u.username as author');
}

export async function listVersions(db: Db, documentId: string) {
  return db('document_versions')
    .where({ document_id: documentId })
    .orderBy('version')
    .select('version', 'state', 'content_hash', 'workflow_id', 'stage_name', 'due_at', 'effective_at', 'created_at');
}

export async function listDocuments(db: Db, filter: { state?: string; docType?: string; q?: string; limit: number; offset: number }) {
  const latest = db('document_versions')
    .select(db.raw('distinct on (document_id) *'))
    .orderBy([{ column: 'document_id' }, { column: 'version', order: 'desc' }]);
  const query = db('documents as d')
    .leftJoin(latest.as('v'), 'v.document_id', 'd.id')
    .leftJoin('document_versions as e', (j) => j.on('e.document_id', 'd.id').andOnVal('e.state', 'effective'));
  if (filter.state) query.where('v.state', filter.state);
  if (filter.docType) query.where('d.doc_type', filter.docType);
  if (filter.q) query.where((q) => q.whereILike('d.title', `%${filter.q}%`).orWhereILike('d.number', `%${filter.q}%`));
  const [{ total }] = await query.clone().count('* as total');
  const items = await query
    .select(
      'd.number',
      'd.title',
      'd.doc_type',
      'd.created_at',
      'v.version as latest_version',
      'v.state as latest_state',
      'v.stage_name',
      'v.assignees',
      'v.due_at',
      'e.version as effective_version',
    )
    .orderBy('d.number')
    .limit(filter.limit)
    .offset(filter.offset);
  return { total: Number(total), items };
}

export async function listSignatures(db: Db, versionId: string) {
  return signaturesWithVoids(db)
    .where({ 's.document_version_id': versionId })
    .orderBy([{ column: 's.round' }, { column: 's.stage_index' }, { column: 's.signed_at' }])
    .select('s.round', 's.stage_name', 's.username', 's.printed_name', 's.meaning', 's.signed_at', 's.content_hash', db.raw(VOID_COLUMNS.join(', ')));
}

/** A version's text by its content hash. */
export async function findContent(db: Db, hash: string): Promise<string | undefined> {
  return (await db('document_contents').where({ hash }).first('content'))?.content;
}
