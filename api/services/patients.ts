import type { Knex } from 'knex';
import type { Actor } from '../../common/roles';
import { createPatient, deletePatient, patientBirthDate, updatePatient, type PatientInput } from '../../db/patients';
import { createNote, deleteNote, updateNote } from '../../db/soap-notes';
import type { ApiDeps } from '../deps';
import { logPhiRead, requirePatientAccess, type PhiVia } from '../patient-access';
import { problems } from '../problem';
import type { ParsedNote } from '../schemas/patients';
import { stopSummariesOfDeletedPatient, supersedeRunningSummaries } from '../temporal/soap-summary';

// Access is checked in the transaction that writes, so a care team changed meanwhile cannot let a write through.
// A write that answers with the record is also a disclosure: its access event is written in the same transaction,
// so a write whose answer cannot be logged is undone and can simply be retried.

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
    const result = await updatePatient(trx, actor, patientId, change);
    if (result) await logPhiRead(trx, actor, via, { kind: 'patient', patientIds: [patientId], recordIds: [patientId] }, log);
    return result;
  });
}

/** Deletes a patient's records; their open summary runs are stopped first, so none is left writing into them. */
export async function deletePatientRecords(deps: Pick<ApiDeps, 'db' | 'temporal'>, actor: Actor, patientId: string): Promise<boolean> {
  await requirePatientAccess(deps.db, actor, patientId);
  await stopSummariesOfDeletedPatient(deps, patientId);
  return deps.db.transaction(async (trx) => {
    await requirePatientAccess(trx, actor, patientId, 'update');
    return deletePatient(trx, actor, patientId);
  });
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
    return deleteNote(trx, actor, patientId, noteId, version);
  });
  if (deleted) await afterNotesChanged(deps, patientId);
  return deleted;
}
