import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { canonicalJson } from '../common/capa-hash';
import type { Actor } from '../common/roles';
import { SOAP_SECTIONS, type SoapSections } from '../common/soap-sections';
import { appendAudit } from './audit';
import { afterRow } from './keyset';

export { patientIdentifiers, type PatientIdentifiers } from './patients';

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

export interface NoteContent extends SoapSections {
  noteTime: Date | string;
}

/** SHA-256 (hex) of the canonical JSON of the four sections and the note time in ISO UTC: what provenance names. */
export function noteContentHash(note: NoteContent): string {
  return sha256(
    canonicalJson({
      subjective: note.subjective,
      objective: note.objective,
      assessment: note.assessment,
      plan: note.plan,
      noteTime: new Date(note.noteTime).toISOString(),
    }),
  );
}

export interface NotesFingerprint {
  /** First 32 hex characters of SHA-256 over "<id>:<content_hash>" lines; names the summary run. */
  notesHash: string;
  noteIds: string[];
  noteHashes: string[];
}

/**
 * The patient's notes as they stand, ordered by (note_time, id). A patient without notes gets empty arrays and
 * the hash of nothing; such a patient cannot be summarized, which is the caller's to refuse.
 */
export async function notesFingerprint(db: Knex, patientId: string): Promise<NotesFingerprint> {
  const rows: { id: string; content_hash: string }[] = await db('soap_notes')
    .where({ patient_id: patientId })
    .orderBy([{ column: 'note_time' }, { column: 'id' }])
    .select('id', 'content_hash');
  return {
    notesHash: sha256(rows.map((r) => `${r.id}:${r.content_hash}`).join('\n')).slice(0, 32),
    noteIds: rows.map((r) => r.id),
    noteHashes: rows.map((r) => r.content_hash),
  };
}

export interface SoapNote extends SoapSections {
  id: string;
  patientId: string;
  noteTime: string;
  author: string;
  contentHash: string;
  version: number;
  createdAt: string;
  updatedAt: string;
}

const iso = (value: Date | string) => new Date(value).toISOString();

const selectNote = (db: Knex) =>
  db('soap_notes as n')
    .join('users as u', 'u.id', 'n.author_id')
    .select('n.id', 'n.patient_id', ...SOAP_SECTIONS.map((s) => `n.${s}`), 'n.note_time', 'n.content_hash', 'n.version')
    .select('n.created_at', 'n.updated_at', 'u.username as author');

function toNote(row: Record<string, unknown>): SoapNote {
  return {
    id: row.id as string,
    patientId: row.patient_id as string,
    subjective: row.subjective as string,
    objective: row.objective as string,
    assessment: row.assessment as string,
    plan: row.plan as string,
    noteTime: iso(row.note_time as Date),
    author: row.author as string,
    contentHash: row.content_hash as string,
    version: row.version as number,
    createdAt: iso(row.created_at as Date),
    updatedAt: iso(row.updated_at as Date),
  };
}

export async function findNote(db: Knex, patientId: string, noteId: string): Promise<SoapNote | undefined> {
  const row = await selectNote(db).where({ 'n.patient_id': patientId, 'n.id': noteId }).first();
  return row ? toNote(row) : undefined;
}

export interface NoteWrite {
  sections: SoapSections;
  /** Millisecond precision: the stored time must read back as the very instant that was hashed. */
  noteTime: Date;
}

/**
 * Appends one version of a note: its text and time as they stand from now on (or, for `deleted`, as they stood
 * when it was deleted), who made it and when. Versions are never changed; the primary key refuses a second write
 * of the same version.
 */
async function appendNoteVersion(
  trx: Knex,
  actor: Actor,
  row: { noteId: string; patientId: string; version: number; sections: SoapSections; noteTime: Date | string; contentHash: string },
  deleted = false,
): Promise<void> {
  await trx('soap_note_versions').insert({
    note_id: row.noteId,
    version: row.version,
    patient_id: row.patientId,
    ...Object.fromEntries(SOAP_SECTIONS.map((s) => [s, row.sections[s]])),
    note_time: row.noteTime,
    content_hash: row.contentHash,
    recorded_by: actor.userId,
    deleted,
  });
}

/** Inserts a note with its content hash and first version, and records it in the audit trail (IDs and hash only). */
export async function createNote(db: Knex, actor: Actor, patientId: string, note: NoteWrite): Promise<SoapNote> {
  return db.transaction(async (trx) => {
    const contentHash = noteContentHash({ ...note.sections, noteTime: note.noteTime });
    const [{ id }] = await trx('soap_notes')
      .insert({ patient_id: patientId, ...note.sections, note_time: note.noteTime, author_id: actor.userId, content_hash: contentHash })
      .returning('id');
    await appendNoteVersion(trx, actor, { noteId: id, patientId, version: 1, sections: note.sections, noteTime: note.noteTime, contentHash });
    await appendAudit(trx, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'soap_note.created',
      entityType: 'soap_note',
      entityId: id,
      details: { patientId, version: 1, contentHash, sections: SOAP_SECTIONS.filter((s) => note.sections[s] !== '') },
    });
    return (await findNote(trx, patientId, id))!;
  });
}

/** A write refused because the note moved on since the caller read it. */
export class StaleNoteVersion extends Error {
  constructor(readonly currentVersion: number) {
    super(`the note is at version ${currentVersion}`);
  }
}

/**
 * Makes the caller's text the note's next version when the caller's version is current: the note shows it, and
 * soap_note_versions keeps it beside every earlier one (nothing is overwritten for good). A request that changes
 * nothing keeps the version and writes nothing, so a retried PUT is harmless. Undefined when there is no such note.
 */
export async function updateNote(
  db: Knex,
  actor: Actor,
  patientId: string,
  noteId: string,
  expectedVersion: number,
  note: NoteWrite,
): Promise<{ note: SoapNote; changed: string[] } | undefined> {
  return db.transaction(async (trx) => {
    const current = await trx('soap_notes').where({ id: noteId, patient_id: patientId }).forNoKeyUpdate().first();
    if (!current) return undefined;
    if (current.version !== expectedVersion) throw new StaleNoteVersion(current.version);
    const contentHash = noteContentHash({ ...note.sections, noteTime: note.noteTime });
    const changed: string[] = SOAP_SECTIONS.filter((s) => current[s] !== note.sections[s]);
    if (new Date(current.note_time).getTime() !== note.noteTime.getTime()) changed.push('noteTime');
    if (changed.length) {
      await trx('soap_notes')
        .where({ id: noteId })
        .update({
          ...note.sections,
          note_time: note.noteTime,
          content_hash: contentHash,
          version: current.version + 1,
          updated_at: trx.fn.now(),
        });
      await appendNoteVersion(trx, actor, {
        noteId,
        patientId,
        version: current.version + 1,
        sections: note.sections,
        noteTime: note.noteTime,
        contentHash,
      });
      await appendAudit(trx, {
        actorId: actor.userId,
        actor: actor.username,
        action: 'soap_note.updated',
        entityType: 'soap_note',
        entityId: noteId,
        details: { patientId, version: current.version + 1, previousContentHash: current.content_hash, contentHash, fields: changed },
      });
    }
    return { note: (await findNote(trx, patientId, noteId))!, changed };
  });
}

/**
 * Deletes a note, checking the caller's version when one is given; its versions stay, with one more that records
 * who deleted it and when. False when there is no such note.
 */
export async function deleteNote(db: Knex, actor: Actor, patientId: string, noteId: string, expectedVersion?: number): Promise<boolean> {
  return db.transaction(async (trx) => {
    const current = await trx('soap_notes').where({ id: noteId, patient_id: patientId }).forNoKeyUpdate().first();
    if (!current) return false;
    if (expectedVersion !== undefined && current.version !== expectedVersion) throw new StaleNoteVersion(current.version);
    await appendNoteVersion(
      trx,
      actor,
      {
        noteId,
        patientId,
        version: current.version + 1,
        sections: Object.fromEntries(SOAP_SECTIONS.map((s) => [s, current[s]])) as SoapSections,
        noteTime: current.note_time,
        contentHash: current.content_hash,
      },
      true,
    );
    await trx('soap_notes').where({ id: noteId }).delete();
    await appendAudit(trx, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'soap_note.deleted',
      entityType: 'soap_note',
      entityId: noteId,
      details: { patientId, version: current.version, contentHash: current.content_hash },
    });
    return true;
  });
}

export interface NoteListOptions {
  desc: boolean;
  limit: number;
  afterId?: string;
}

const NOTE_KEYS = ['n.note_time', 'n.id'];

/** One page of the patient's notes by note time, and how many there are in all. */
export async function listNotes(
  db: Knex,
  patientId: string,
  o: NoteListOptions,
): Promise<{ items: SoapNote[]; total: number; more: boolean }> {
  const page = selectNote(db).where('n.patient_id', patientId);
  if (o.afterId) page.whereRaw(afterRow(NOTE_KEYS, o.desc, 'soap_notes', 'n'), [o.afterId]);
  for (const key of NOTE_KEYS) page.orderByRaw(`${key} ${o.desc ? 'desc' : 'asc'}`);
  const rows = await page.limit(o.limit + 1);
  const totalRow = await db('soap_notes').where({ patient_id: patientId }).count('* as n').first();
  return { items: rows.slice(0, o.limit).map(toNote), total: Number(totalRow?.n ?? 0), more: rows.length > o.limit };
}

export async function noteExists(db: Knex, patientId: string, noteId: string): Promise<boolean> {
  return Boolean(await db('soap_notes').where({ id: noteId, patient_id: patientId }).first('id'));
}

export interface NoteForSummary extends SoapSections {
  id: string;
  noteTime: string;
  contentHash: string;
}

/**
 * The named notes' sections, ordered by (note_time, id) as the fingerprint orders them. A note deleted since the
 * fingerprint was taken is simply absent; compare content hashes to detect a change.
 */
export async function notesForSummary(db: Knex, noteIds: string[]): Promise<NoteForSummary[]> {
  if (!noteIds.length) return [];
  const rows = await db('soap_notes')
    .whereIn('id', noteIds)
    .orderBy([{ column: 'note_time' }, { column: 'id' }])
    .select('id', ...SOAP_SECTIONS, 'note_time', 'content_hash');
  return rows.map((r) => ({
    id: r.id,
    subjective: r.subjective,
    objective: r.objective,
    assessment: r.assessment,
    plan: r.plan,
    noteTime: iso(r.note_time),
    contentHash: r.content_hash,
  }));
}

export interface SoapNoteVersion extends SoapSections {
  noteId: string;
  version: number;
  noteTime: string;
  contentHash: string;
  /** Who made this version (wrote, edited or deleted the note). */
  recordedBy: string;
  recordedAt: string;
  /** This version records the note's deletion; its text is the text the note had then. */
  deleted: boolean;
}

/** Every version of one of the patient's notes, oldest first; empty when the patient never had that note. */
export async function listNoteVersions(db: Knex, patientId: string, noteId: string): Promise<SoapNoteVersion[]> {
  const rows = await db('soap_note_versions as v')
    .join('users as u', 'u.id', 'v.recorded_by')
    .where({ 'v.patient_id': patientId, 'v.note_id': noteId })
    .orderBy('v.version')
    .select('v.note_id', 'v.version', ...SOAP_SECTIONS.map((s) => `v.${s}`), 'v.note_time', 'v.content_hash')
    .select('v.recorded_at', 'v.deleted', 'u.username as recorded_by');
  return rows.map((r) => ({
    noteId: r.note_id,
    version: r.version,
    subjective: r.subjective,
    objective: r.objective,
    assessment: r.assessment,
    plan: r.plan,
    noteTime: iso(r.note_time),
    contentHash: r.content_hash,
    recordedBy: r.recorded_by,
    recordedAt: iso(r.recorded_at),
    deleted: r.deleted,
  }));
}
