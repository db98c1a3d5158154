import type { Knex } from 'knex';
import type { Actor } from '../../common/roles';
import { createPatient, patientBirthDate, updatePatient, type PatientInput } from '../../db/patients';
import { disposePatient, isRetired, patientRetention, type Disposal } from '../../db/retention';
import { createNote, deleteNote, updateNote } from '../../db/soap-notes';
import type { ApiDeps } from '../deps';
import { logPhiRead, requirePatientAccess, type PhiVia } from '../patient-access';
import { problems } from '../problem';
import type { ParsedNote } from '../schemas/patients';
import { stopSummariesOfDeletedPatient, supersedeRunningSummaries } from '../temporal/soap-summary';

// Access is checked in the transaction that writes, so a care team changed meanwhile cannot let a write through.
// A write that answers with the record is also a disclosure: its access event is written in the same transaction,
// so a write whose answer cannot be logged is undone and can simply be retried.

/** A retired record is kept as it was when retired: 409 for any write to it. */
export async function refuseRetired(db: Knex, patientId: string): Promise<void> {
  if (await isRetired(db, patientId)) {
    throw problems.conflict('patient-retired', 'the patient is retired: their record is kept as it was and takes no more changes');
  }
}

async function refuseNoteBeforeBirth(trx: Knex, patientId: string, note: ParsedNote) {
  const dob = await patientBirthDate(trx, patientId);
  // Time zones east of UTC start a birth day up to 14 hours earlier.
  if (dob && note.noteTime.getTime() < Date.parse(`${dob}T00:00:00Z`) - 14 * 3600_000) {
    throw problems.unprocessable('note-before-birth', "the note time is before the patient's date of birth", {
      errors: [{ field: 'body.noteTime', detail: "before the patient's date of birth" }],
    });
  }
}

/**
 * Open summaries of the old notes are superseded once a note change has committed. The change stands if
 * Temporal cannot be told (answering an error would invite a retry that writes the note twice); it is logged
 * with IDs only.
 */
async function afterNotesChanged(deps: Pick<ApiDeps, 'db' | 'temporal' | 'log'>, patientId: string) {
  try {
    await supersedeRunningSummaries(deps, patientId);
  } catch (err) {
    deps.log.error({ patientId, err: err instanceof Error ? err.name : String(err) }, 'could not supersede summaries after a note change');
  }
}

/** Registers a patient; the answer shows the record, so it is logged as read by its creator. */
export function registerPatient({ db, log }: Pick<ApiDeps, 'db' | 'log'>, actor: Actor, input: PatientInput, via: PhiVia) {
  return db.transaction(async (trx) => {
    const patient = await createPatient(trx, actor, input);
    await logPhiRead(trx, actor, via, { kind: 'patient', patientIds: [patient.id], recordIds: [patient.id] }, log);
    return patient;
  });
}

export function changePatient(
  { db, log }: Pick<ApiDeps, 'db' | 'log'>,
  actor: Actor,
  patientId: string,
  change: Partial<PatientInput>,
  via: PhiVia,
) {
  return db.transaction(async (trx) => {
    await requirePatientAccess(trx, actor, patientId, 'update');
    await refuseRetired(trx, patientId);
    const result = await updatePatient(trx, actor, patientId, change);
    if (result) await logPhiRead(trx, actor, via, { kind: 'patient', patientIds: [patientId], recordIds: [patientId] }, log);
    return result;
  });
}

/**
 * Deletes a patient's records, or retires them when they hold signed summaries (db/retention.ts). A legal hold
 * refuses either before anything is stopped; otherwise the open summary runs are stopped first, so none is left
 * writing into a record that is going or that takes no more changes.
 */
export async function deletePatientRecords(deps: Pick<ApiDeps, 'db' | 'temporal'>, actor: Actor, patientId: string): Promise<Disposal> {
  await requirePatientAccess(deps.db, actor, patientId);
  if ((await patientRetention(deps.db, patientId))?.legalHold) return disposePatient(deps.db, actor, patientId);
  await stopSummariesOfDeletedPatient(deps, patientId);
  await requirePatientAccess(deps.db, actor, patientId);
  return disposePatient(deps.db, actor, patientId);
}

export async function addNote(
  deps: Pick<ApiDeps, 'db' | 'temporal' | 'log'>,
  actor: Actor,
  patientId: string,
  note: ParsedNote,
  via: PhiVia,
) {
  const created = await deps.db.transaction(async (trx) => {
    await requirePatientAccess(trx, actor, patientId, 'share');
    await refuseRetired(trx, patientId);
    await refuseNoteBeforeBirth(trx, patientId, note);
    const row = await createNote(trx, actor, patientId, note);
    await logPhiRead(trx, actor, via, { kind: 'note', patientIds: [patientId], recordIds: [row.id] }, deps.log);
    return row;
  });
  await afterNotesChanged(deps, patientId);
  return created;
}

/** Replaces a note at the version read; undefined when there is no such note. */
export async function replaceNote(
  deps: Pick<ApiDeps, 'db' | 'temporal' | 'log'>,
  actor: Actor,
  patientId: string,
  noteId: string,
  version: number,
  note: ParsedNote,
  via: PhiVia,
) {
  const result = await deps.db.transaction(async (trx) => {
    await requirePatientAccess(trx, actor, patientId, 'share');
    await refuseRetired(trx, patientId);
    await refuseNoteBeforeBirth(trx, patientId, note);
    const updated = await updateNote(trx, actor, patientId, noteId, version, note);
    if (updated) await logPhiRead(trx, actor, via, { kind: 'note', patientIds: [patientId], recordIds: [noteId] }, deps.log);
    return updated;
  });
  if (result?.changed.length) await afterNotesChanged(deps, patientId);
  return result;
}

/** Deletes a note (only at `version`, when given); false when there is no such note. */
export async function removeNote(
  deps: Pick<ApiDeps, 'db' | 'temporal' | 'log'>,
  actor: Actor,
  patientId: string,
  noteId: string,
  version: number | undefined,
): Promise<boolean> {
  const deleted = await deps.db.transaction(async (trx) => {
    await requirePatientAccess(trx, actor, patientId, 'share');
    await refuseRetired(trx, patientId);
    return deleteNote(trx, actor, patientId, noteId, version);
  });
  if (deleted) await afterNotesChanged(deps, patientId);
  return deleted;
}
