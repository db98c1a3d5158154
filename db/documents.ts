import type { Knex } from 'knex';
import { OPEN_VERSION_STATES, type VersionState } from '../common/document-approval';
import type { Actor } from '../common/roles';
import { appendAudit } from './audit';
import { sha256Hex } from './identity';
import type { Db } from './knex';
import { signaturesWithVoids, VOID_COLUMNS } from './signatures';

export class DocumentConflict extends Error {
  constructor(
    readonly kind: 'number-taken' | 'open-revision',
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

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
    await trx('documents').where({ id: documentId }).forUpdate().first('id');
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

export async function findDocument(db: Db, number: string) {
  return db('documents as d')
    .join('users as u', 'u.id', 'd.owner_id')
    .where('d.number', number)
    .first('d.id', 'd.number', 'd.title', 'd.doc_type', 'd.created_at', 'u.username as owner');
}

export interface VersionRow {
  id: string;
  document_id: string;
  number: string;
  title: string;
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
    .first('v.*', 'd.number', 'd.title', 'u.username as author');
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
