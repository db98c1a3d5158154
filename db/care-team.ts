import type { Knex } from 'knex';
import type { Actor } from '../common/roles';
import { appendAudit } from './audit';
import type { Db } from './knex';
import { queueNotifications } from './notifications';
import { isOnCareTeam, PatientConflict } from './patients';
import { resolveRecipients } from './recipients';

/*
 * How someone joins a patient's care team. A clinician on the team adds a colleague directly (db/patients.ts
 * addToCareTeam). An admin, who never reads the record, may only ask: the request waits until a clinician of that
 * team confirms it. When no clinician of the team can be reached in time, an admin may use break-glass access with
 * a reason: the clinician joins at once, the addition is audited, and every privacy officer is alerted.
 */

export interface CareTeamRequest {
  id: string;
  patientId: string;
  username: string;
  requestedBy: string;
  requestedAt: string;
  state: 'pending' | 'confirmed' | 'withdrawn';
  decidedBy: string | null;
  decidedAt: string | null;
}

const iso = (value: Date | string) => new Date(value).toISOString();

function toRequest(r: Record<string, unknown>): CareTeamRequest {
  return {
    id: r.id as string,
    patientId: r.patient_id as string,
    username: r.username as string,
    requestedBy: r.requested_by_username as string,
    requestedAt: iso(r.requested_at as Date),
    state: r.state as CareTeamRequest['state'],
    decidedBy: (r.decided_by_username as string | null) ?? null,
    decidedAt: r.decided_at ? iso(r.decided_at as Date) : null,
  };
}

const selectRequests = (db: Knex) =>
  db('care_team_requests as r')
    .join('users as u', 'u.id', 'r.user_id')
    .join('users as a', 'a.id', 'r.requested_by')
    .leftJoin('users as d', 'd.id', 'r.decided_by')
    .select('r.id', 'r.patient_id', 'r.state', 'r.requested_at', 'r.decided_at')
    .select('u.username', 'a.username as requested_by_username', 'd.username as decided_by_username');

export async function findCareTeamRequest(db: Knex, patientId: string, requestId: string): Promise<CareTeamRequest | undefined> {
  const row = await selectRequests(db).where({ 'r.patient_id': patientId, 'r.id': requestId }).first();
  return row ? toRequest(row) : undefined;
}

/** The team's requests still waiting for a clinician's confirmation, oldest first. */
export async function pendingCareTeamRequests(db: Knex, patientId: string): Promise<CareTeamRequest[]> {
  const rows = await selectRequests(db).where({ 'r.patient_id': patientId, 'r.state': 'pending' }).orderBy('r.requested_at');
  return rows.map(toRequest);
}

/**
 * An admin's request to add a clinician: pending until a clinician of the team confirms it. Answers the pending
 * request (the same one when asked again), or 'member' when the clinician is on the team already.
 */
export async function requestCareTeamAddition(
  db: Db,
  actor: Actor,
  patientId: string,
  user: { id: string; username: string },
): Promise<{ request: CareTeamRequest; created: boolean } | 'member'> {
  return db.transaction(async (trx) => {
    await trx('patients').where({ id: patientId }).forNoKeyUpdate().first('id');
    if (await isOnCareTeam(trx, patientId, user.id)) return 'member';
    const { rows } = await trx.raw(
      `insert into care_team_requests (patient_id, user_id, requested_by) values (?, ?, ?)
       on conflict (patient_id, user_id) where state = 'pending' do nothing returning id`,
      [patientId, user.id, actor.userId],
    );
    const inserted = rows[0] as { id: string } | undefined;
    const id: string =
      inserted?.id ?? (await trx('care_team_requests').where({ patient_id: patientId, user_id: user.id, state: 'pending' }).first('id')).id;
    if (inserted) {
      await appendAudit(trx, {
        actorId: actor.userId,
        actor: actor.username,
        action: 'patient.clinician_requested',
        entityType: 'patient',
        entityId: patientId,
        details: { requestId: id, userId: user.id, username: user.username },
      });
    }
    return { request: (await findCareTeamRequest(trx, patientId, id))!, created: Boolean(inserted) };
  });
}

/**
 * A clinician of the team confirms an admin's request: the clinician joins the team in the same transaction.
 * The confirming clinician's membership is checked under the patient row's lock, so a removal cannot race it.
 */
export async function confirmCareTeamRequest(
  db: Db,
  actor: Actor,
  patientId: string,
  requestId: string,
): Promise<CareTeamRequest | 'no-request'> {
  return db.transaction(async (trx) => {
    await trx('patients').where({ id: patientId }).forNoKeyUpdate().first('id');
    const request = await trx('care_team_requests').where({ id: requestId, patient_id: patientId }).forNoKeyUpdate().first();
    if (!request) return 'no-request';
    if (request.state !== 'pending') {
      throw new PatientConflict('request-decided', `this request is already ${request.state}`);
    }
    const confirmer = await trx('users').where({ id: actor.userId, active: true }).whereRaw(`'clinician' = any(roles)`).first('id');
    if (!confirmer || !(await isOnCareTeam(trx, patientId, actor.userId))) {
      throw new PatientConflict('not-on-care-team', 'only an active clinician on this care team may confirm an addition to it');
    }
    const joining = await trx('users').where({ id: request.user_id, active: true }).whereRaw(`'clinician' = any(roles)`).first('id', 'username');
    if (!joining) throw new PatientConflict('not-a-clinician', 'the requested user is no longer an active clinician');
    await trx('patient_clinicians')
      .insert({ patient_id: patientId, user_id: joining.id, added_by: request.requested_by, access: 'confirmed', confirmed_by: actor.userId })
      .onConflict(['patient_id', 'user_id'])
      .ignore();
    await trx('care_team_requests').where({ id: requestId }).update({ state: 'confirmed', decided_by: actor.userId, decided_at: trx.fn.now() });
    await appendAudit(trx, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'patient.clinician_confirmed',
      entityType: 'patient',
      entityId: patientId,
      details: { requestId, userId: joining.id, username: joining.username },
    });
    return (await findCareTeamRequest(trx, patientId, requestId))!;
  });
}

/** The privacy officers' alert: IDs and usernames only; the reason is read in labflow, not in a mailbox. */
function breakGlassMessage(patientId: string, eventId: string, admin: string, clinician: string) {
  return {
    idempotencyKey: `break-glass:${eventId}`,
    kind: 'patient.care_team_break_glass',
    title: `Break-glass access to patient ${patientId}`,
    body:
      `${admin} used break-glass access to add ${clinician} to the care team of patient ${patientId} without a ` +
      'confirmation from the team. Review the reason given and the access that followed in the break-glass log and ' +
      "the patient's PHI access log.",
    link: `/api/v1/patients/${patientId}/break-glass`,
  };
}

/**
 * Break-glass: an admin adds a clinician at once, giving a reason. One transaction records the membership, the
 * break-glass event with its reason, the audit event and the privacy officers' notification and email (the
 * outbox IDs are answered for delivery once it has committed). False when the clinician was on the team already
 * (nothing written).
 */
export async function breakGlassAddition(
  db: Db,
  actor: Actor,
  patientId: string,
  user: { id: string; username: string },
  reason: string,
  mailDomain: string,
): Promise<{ added: boolean; eventId: string | null; outboxIds: string[] }> {
  return db.transaction(async (trx) => {
    await trx('patients').where({ id: patientId }).forNoKeyUpdate().first('id');
    const inserted = await trx('patient_clinicians')
      .insert({ patient_id: patientId, user_id: user.id, added_by: actor.userId, access: 'break_glass' })
      .onConflict(['patient_id', 'user_id'])
      .ignore()
      .returning('user_id');
    if (!inserted.length) return { added: false, eventId: null, outboxIds: [] };
    const [event] = await trx('care_team_break_glass')
      .insert({ patient_id: patientId, user_id: user.id, added_by: actor.userId, reason })
      .returning('id');
    // A pending request for the same clinician is settled by the break-glass addition.
    await trx('care_team_requests')
      .where({ patient_id: patientId, user_id: user.id, state: 'pending' })
      .update({ state: 'withdrawn', decided_by: actor.userId, decided_at: trx.fn.now() });
    await appendAudit(trx, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'patient.care_team_break_glass',
      entityType: 'patient',
      entityId: patientId,
      details: { breakGlassId: event.id, userId: user.id, username: user.username },
    });
    const outboxIds = await queueNotifications(
      trx,
      await resolveRecipients(trx, [{ kind: 'role', role: 'privacy_officer' }]),
      breakGlassMessage(patientId, event.id, actor.username, user.username),
      mailDomain,
    );
    return { added: true, eventId: event.id as string, outboxIds };
  });
}

export interface BreakGlassEvent {
  id: string;
  at: string;
  username: string;
  addedBy: string;
  reason: string;
}

/** The patient's break-glass additions, newest first: for the privacy officer's review. */
export async function listBreakGlass(db: Knex, patientId: string): Promise<BreakGlassEvent[]> {
  const rows = await db('care_team_break_glass as b')
    .join('users as u', 'u.id', 'b.user_id')
    .join('users as a', 'a.id', 'b.added_by')
    .where('b.patient_id', patientId)
    .orderBy([
      { column: 'b.at', order: 'desc' },
      { column: 'b.id', order: 'desc' },
    ])
    .select('b.id', 'b.at', 'b.reason', 'u.username', 'a.username as added_by');
  return rows.map((r) => ({ id: r.id, at: iso(r.at), username: r.username, addedBy: r.added_by, reason: r.reason }));
}
