import type { Actor } from '../common/roles';
import type { Db } from '../db/knex';
import { isOnCareTeam } from '../db/patients';
import { problems } from './problem';

/*
 * Patient records are PHI: only a clinician on the patient's care team reads or writes them. Unlike every other
 * role check in the API, admin does not pass; an admin may manage who is on a care team (IDs and usernames only)
 * so that a patient whose clinicians have left can be handed to new ones, but never reads the record itself.
 */

export const isClinician = (actor: Actor) => actor.roles.includes('clinician');

export function requireClinician(actor: Actor): void {
  if (!isClinician(actor)) {
    throw problems.forbidden("patient records are open only to clinicians on the patient's care team; no other role may read them");
  }
}

/**
 * 403 for anyone but a clinician, 404 for an unknown patient, 403 for a clinician not on its care team. Pass a
 * transaction and a lock to hold the patient row until the write commits: "share" keeps the patient (and the
 * care team) from being deleted or changed under a note write, "update" for writes to the patient itself.
 */
export async function requirePatientAccess(db: Db, actor: Actor, patientId: string, lock?: 'share' | 'update'): Promise<void> {
  requireClinician(actor);
  const query = db('patients').where({ id: patientId }).first('id');
  if (lock === 'share') query.forShare();
  if (lock === 'update') query.forUpdate();
  if (!(await query)) throw problems.notFound(`patient ${patientId}`);
  if (!(await isOnCareTeam(db, patientId, actor.userId))) {
    throw problems.forbidden("you are not on this patient's care team; a clinician on it can add you");
  }
}

/**
 * Who may see and change a care team: a clinician on it, or an admin (the answer holds usernames and IDs, no
 * PHI). Answers which of the two the actor acts as.
 */
export async function requireCareTeamManager(db: Db, actor: Actor, patientId: string): Promise<'clinician' | 'admin'> {
  const exists = await db('patients').where({ id: patientId }).first('id');
  const member = isClinician(actor) && exists ? await isOnCareTeam(db, patientId, actor.userId) : false;
  if (member) return 'clinician';
  if (actor.roles.includes('admin')) {
    if (!exists) throw problems.notFound(`patient ${patientId}`);
    return 'admin';
  }
  requireClinician(actor);
  if (!exists) throw problems.notFound(`patient ${patientId}`);
  throw problems.forbidden("you are not on this patient's care team; a clinician on it can add you");
}

/** How the OpenAPI document describes who may call a PHI route. */
export const PHI_ACCESS = "Clinicians on the patient's care team only. Admin does not pass: the record is PHI.";
