import type { Context } from 'koa';
import { appendAudit } from '../../db/audit';
import { encodeCursor } from '../../db/keyset';
import {
  breakGlassAddition,
  confirmCareTeamRequest,
  listBreakGlass,
  pendingCareTeamRequests,
  requestCareTeamAddition,
} from '../../db/care-team';
import { patientRetention, retentionRules, setLegalHold } from '../../db/retention';
import { addToCareTeam, careTeam, findPatient, isOnCareTeam, listPatients, PatientConflict, removeFromCareTeam } from '../../db/patients';
import { hasAccessEvents, isAccessEventOf, listAccessEvents } from '../../db/phi-access';
import { findNote, listNotes, listNoteVersions, noteExists, StaleNoteVersion } from '../../db/soap-notes';
import { findActiveClinician, findUserByUsername } from '../../db/users';
import type { ApiDeps } from '../deps';
import {
  phiAccessLog,
  phiVia,
  requireCareTeamManager,
  requireClinician,
  requirePrivacyOfficer,
  PHI_ACCESS,
  PRIVACY_OFFICER_ACCESS,
} from '../patient-access';
import { Problem, problems } from '../problem';
import { route, type RouteSpec } from '../route';
import * as R from '../schemas/responses';
import { addNote, changePatient, deletePatientRecords, registerPatient, removeNote, replaceNote } from '../services/patients';
import { deliverQueuedEmails } from '../temporal/notifications';
import {
  ACCESS_LOG_SORT,
  accessLogQuery,
  addClinicianBody,
  careTeamMemberParams,
  careTeamRequestParams,
  legalHoldBody,
  createNoteBody,
  createPatientBody,
  listNotesQuery,
  listPatientsQuery,
  noteParams,
  patientParams,
  updateNoteBody,
  updatePatientBody,
} from '../schemas/patients';

const TAG = 'patients';
const CLINICIAN = ['clinician'] as const;
const PRIVACY_OFFICER = ['privacy_officer'] as const;
const CARE_TEAM_ACCESS = "Clinicians on the patient's care team, or admin (usernames only, no PHI).";

const patientPath = (id: string) => `/api/v1/patients/${id}`;
const notePath = (patientId: string, noteId: string) => `${patientPath(patientId)}/notes/${noteId}`;
const etag = (version: number) => `"v${version}"`;
const requestPath = (patientId: string, requestId: string) => `${patientPath(patientId)}/clinicians/requests/${requestId}`;

function conflict(err: unknown): never {
  if (err instanceof PatientConflict) throw problems.conflict(err.type, err.message);
  if (err instanceof StaleNoteVersion) {
    throw problems.conflict('stale-version', `the note changed since you read it (now version ${err.currentVersion}); read it again`, {
      currentVersion: err.currentVersion,
    });
  }
  throw err;
}

/** The version a write is based on, from the body or an If-Match of the ETag the note was served with. */
function expectedVersion(ctx: Context, bodyVersion: number | undefined, required: boolean): number | undefined {
  const header = ctx.get('if-match');
  let fromHeader: number | undefined;
  if (header) {
    const match = /^"v(\d{1,9})"$/.exec(header.trim());
    if (!match) {
      const errors = [{ field: 'headers.if-match', detail: 'the ETag the note was served with, such as "v3"' }];
      throw problems.validation(`headers.if-match: ${errors[0].detail}`, errors);
    }
    fromHeader = Number(match[1]);
  }
  if (fromHeader !== undefined && bodyVersion !== undefined && fromHeader !== bodyVersion) {
    const errors = [{ field: 'body.version', detail: 'differs from If-Match; send one or make them agree' }];
    throw problems.validation(`body.version: ${errors[0].detail}`, errors);
  }
  const version = bodyVersion ?? fromHeader;
  if (version === undefined && required) {
    throw new Problem(
      428,
      'precondition-required',
      'Precondition required',
      'send the version you read (body.version, or If-Match with the ETag), so that a concurrent change is not overwritten',
    );
  }
  return version;
}

/** A keyset page as the API answers it; the next cursor names the sort and the last row only. */
function pageBody<T extends { id: string }>(
  page: { items: T[]; total: number; more: boolean },
  query: { limit: number; sort: { name: string } },
) {
  const last = page.items[page.items.length - 1];
  return {
    items: page.items,
    total: page.total,
    limit: query.limit,
    sort: query.sort.name,
    nextCursor: page.more && last ? encodeCursor({ sort: query.sort.name, id: last.id }) : null,
  };
}

export function patientRoutes(deps: ApiDeps): RouteSpec[] {
  const { db } = deps;
  const phi = phiAccessLog(deps);

  async function careTeamAnswer(patientId: string) {
    const [clinicians, pending] = await Promise.all([careTeam(db, patientId), pendingCareTeamRequests(db, patientId)]);
    return { patientId, clinicians, pending: pending.map((r) => ({ ...r, location: requestPath(patientId, r.id) })) };
  }

  return [
    route({
      method: 'post',
      path: '/patients',
      response: { 201: R.patient }, problems: [409],
      summary: 'Register a patient; the caller joins its care team',
      tag: TAG,
      roles: CLINICIAN,
      access: 'Clinicians. Admin does not pass: the record is PHI.',
      body: createPatientBody,
      handler: async ({ body, actor, ctx }) => {
        requireClinician(actor);
        const patient = await registerPatient(deps, actor, body, phiVia(ctx)).catch(conflict);
        ctx.status = 201;
        ctx.set('Location', patientPath(patient.id));
        ctx.body = patient;
      },
    }),
    route({
      method: 'get',
      path: '/patients',
      response: R.cursorPage(R.patient), problems: [409],
      summary:
        "The caller's patients (their care teams), searched by name (q), sorted (sort, '-' for descending) and paged (limit, cursor)",
      tag: TAG,
      roles: CLINICIAN,
      access: 'Clinicians; each sees only the patients whose care team they are on.',
      query: listPatientsQuery,
      handler: async ({ query, actor, ctx }) => {
        requireClinician(actor);
        if (query.cursor) {
          const visible = await isOnCareTeam(db, query.cursor.id, actor.userId);
          if (!visible) throw problems.conflict('cursor-expired', 'the page this cursor continues has changed; start again without it');
        }
        const page = await listPatients(db, {
          clinicianId: actor.userId,
          q: query.q,
          sort: query.sort.field,
          desc: query.sort.desc,
          limit: query.limit,
          afterId: query.cursor?.id,
        });
        await phi.read(ctx, actor, { kind: 'patient_list', patientIds: page.items.map((patient) => patient.id) });
        ctx.body = pageBody(page, query);
      },
    }),
    route({
      method: 'get',
      path: '/patients/:id',
      response: R.patient,
      summary: 'A patient',
      tag: TAG,
      roles: CLINICIAN,
      access: PHI_ACCESS,
      params: patientParams,
      handler: async ({ params, actor, ctx }) => {
        await phi.guard(ctx, actor, params.id, 'patient', [params.id]);
        const patient = await findPatient(db, params.id);
        if (!patient) throw problems.notFound(`patient ${params.id}`);
        await phi.read(ctx, actor, { kind: 'patient', patientIds: [params.id], recordIds: [params.id] });
        ctx.body = patient;
      },
    }),
    route({
      method: 'patch',
      path: '/patients/:id',
      response: R.patient, problems: [409, 412, 428],
      summary: "Change some of a patient's fields; null clears an optional one (mrn, sex, address, phone)",
      tag: TAG,
      roles: CLINICIAN,
      access: PHI_ACCESS,
      params: patientParams,
      body: updatePatientBody,
      handler: async ({ params, body, actor, ctx }) => {
        const result = await changePatient(deps, actor, params.id, body, phiVia(ctx)).catch(conflict);
        if (!result) throw problems.notFound(`patient ${params.id}`);
        ctx.body = result.patient;
      },
    }),
    /**
     * DELETE retires instead of deleting when the record holds signed summaries: signed records are kept for their
     * retention period (retention_rules, 'signed_summary': years after the newest signature), read-only, with
     * everything they rest on (notes and their versions, jobs, summaries, signatures). The answer is 200 with the
     * retirement, not 204, so the caller sees the record was kept. DELETE on a retired patient purges it once the
     * retention date has passed and answers 409 retention-period before. A legal hold refuses both (409 legal-hold)
     * and changes nothing. A patient without signed summaries is deleted as before (204).
     */
    route({
      method: 'delete',
      path: '/patients/:id',
      response: { 200: R.retiredPatient, 204: null }, problems: [409],
      summary:
        'Delete a patient with their care team, notes and summaries (204); one with signed summaries is retired and kept for its retention period instead (200); 409 under a legal hold or within the retention period',
      tag: TAG,
      roles: CLINICIAN,
      access: PHI_ACCESS,
      params: patientParams,
      handler: async ({ params, actor, ctx }) => {
        const disposal = await deletePatientRecords(deps, actor, params.id);
        switch (disposal.outcome) {
          case 'not_found':
            throw problems.notFound(`patient ${params.id}`);
          case 'legal_hold':
            throw problems.conflict('legal-hold', 'the patient’s records are under a legal hold: they may be neither retired nor deleted until it is lifted');
          case 'retained':
            throw problems.conflict(
              'retention-period',
              `the patient was retired and holds signed records that must be kept until ${disposal.retainUntil}; they cannot be deleted before`,
              { retiredAt: disposal.retiredAt, retainUntil: disposal.retainUntil },
            );
          case 'retired':
            ctx.status = 200;
            ctx.body = {
              patientId: params.id,
              status: 'retired',
              retiredAt: disposal.retiredAt,
              retainUntil: disposal.retainUntil,
              signedSummaries: disposal.signedSummaries,
              rule: disposal.rule,
              detail: 'the patient holds signed summaries: the record is retired and kept, read-only, until its retention period ends',
            };
            return;
          case 'deleted':
            ctx.status = 204;
        }
      },
    }),
    route({
      method: 'get',
      path: '/patients/:id/retention',
      response: R.retention,
      summary: 'Whether the patient is retired, until when the record is kept, whether a legal hold is on it, and the rules applied',
      tag: TAG,
      roles: ['clinician', 'privacy_officer'],
      access: `${PHI_ACCESS} The privacy_officer role may read it too (no PHI in the answer).`,
      params: patientParams,
      handler: async ({ params, actor, ctx }) => {
        if (!actor.roles.includes('privacy_officer')) await phi.guard(ctx, actor, params.id, 'patient', [params.id]);
        const retention = await patientRetention(db, params.id);
        if (!retention) throw problems.notFound(`patient ${params.id}`);
        ctx.body = { patientId: params.id, ...retention, rules: await retentionRules(db) };
      },
    }),
    route({
      method: 'put',
      path: '/patients/:id/legal-hold',
      response: R.retention,
      summary: 'Put the patient’s records under a legal hold (hold=true, naming the matter) or lift it (hold=false); a hold blocks retirement and deletion',
      tag: TAG,
      roles: PRIVACY_OFFICER,
      access: 'The privacy_officer role only. Admin does not pass. Every change is audited.',
      params: patientParams,
      body: legalHoldBody,
      handler: async ({ params, body, actor, ctx }) => {
        if (!actor.roles.includes('privacy_officer')) throw problems.forbidden('a legal hold is set or lifted by the privacy_officer role only');
        const retention = await setLegalHold(db, actor, params.id, body);
        if (!retention) throw problems.notFound(`patient ${params.id}`);
        ctx.body = { patientId: params.id, ...retention };
      },
    }),
    route({
      method: 'get',
      path: '/patients/:id/access-log',
      response: R.accessLog, problems: [409],
      summary:
        "Who read or was refused the patient's record, notes and summaries: newest first, filtered by user and time (from inclusive, to exclusive), paged (limit, cursor)",
      tag: TAG,
      roles: PRIVACY_OFFICER,
      access: PRIVACY_OFFICER_ACCESS,
      params: patientParams,
      query: accessLogQuery,
      handler: async ({ params, query, actor, ctx }) => {
        requirePrivacyOfficer(actor);
        // The log outlives a deleted patient; an ID that names no record and no event is unknown.
        if (!(await db('patients').where({ id: params.id }).first('id')) && !(await hasAccessEvents(db, params.id))) {
          throw problems.notFound(`patient ${params.id}`);
        }
        if (query.cursor && !(await isAccessEventOf(db, params.id, query.cursor.id))) {
          throw problems.conflict('cursor-expired', "this cursor does not continue this patient's access log; start again without it");
        }
        const filter = { username: query.user, from: query.from, to: query.to };
        const page = await db.transaction(async (trx) => {
          const found = await listAccessEvents(trx, params.id, { ...filter, limit: query.limit, afterId: query.cursor?.id });
          await appendAudit(trx, {
            actorId: actor.userId,
            actor: actor.username,
            action: 'phi_access_log.read',
            entityType: 'patient',
            entityId: params.id,
            details: {
              user: query.user ?? null,
              from: query.from?.toISOString() ?? null,
              to: query.to?.toISOString() ?? null,
              after: query.cursor?.id ?? null,
              events: found.items.map((e) => e.id),
            },
          });
          return found;
        });
        const last = page.items[page.items.length - 1];
        ctx.body = {
          patientId: params.id,
          items: page.items,
          total: page.total,
          limit: query.limit,
          nextCursor: page.more && last ? encodeCursor({ sort: ACCESS_LOG_SORT, id: last.id }) : null,
        };
      },
    }),

    route({
      method: 'get',
      path: '/patients/:id/clinicians',
      response: R.careTeam,
      summary: "The patient's care team: the clinicians who may read and write the record",
      tag: TAG,
      roles: CLINICIAN,
      access: CARE_TEAM_ACCESS,
      params: patientParams,
      handler: async ({ params, actor, ctx }) => {
        await requireCareTeamManager(db, actor, params.id);
        ctx.body = await careTeamAnswer(params.id);
      },
    }),
    route({
      method: 'post',
      path: '/patients/:id/clinicians',
      response: { 200: R.careTeam, 201: R.careTeam, 202: R.careTeam }, problems: [409, 422],
      summary:
        'Add an active clinician to the care team. A clinician on the team adds at once (201, or 200 when already on it); an admin’s addition waits for a clinician of the team to confirm it (202 with the request), unless the admin uses breakGlass with a reason (201; audited, the privacy officers are alerted)',
      tag: TAG,
      roles: CLINICIAN,
      access: `${CARE_TEAM_ACCESS} An admin may not add themselves.`,
      params: patientParams,
      body: addClinicianBody,
      handler: async ({ params, body, actor, ctx }) => {
        const as = await requireCareTeamManager(db, actor, params.id);
        if (as === 'admin' && body.username === actor.username) {
          throw problems.forbidden('an admin may not grant themselves access to a patient record; a clinician on the care team can');
        }
        if (as === 'clinician' && body.breakGlass) {
          throw problems.unprocessable('break-glass-not-needed', 'a clinician on the care team adds colleagues directly; break-glass is for admins', {
            errors: [{ field: 'body.breakGlass', detail: 'not needed by a clinician on the care team' }],
          });
        }
        const user = await findActiveClinician(db, body.username);
        if (!user) {
          throw problems.unprocessable('not-a-clinician', `${body.username} is not an active clinician`, {
            errors: [{ field: 'body.username', detail: 'not an active clinician' }],
          });
        }
        if (as === 'clinician') {
          const added = await addToCareTeam(db, actor, params.id, user);
          ctx.status = added ? 201 : 200;
          ctx.body = await careTeamAnswer(params.id);
          return;
        }
        if (body.breakGlass) {
          const glass = await breakGlassAddition(db, actor, params.id, user, body.breakGlass.reason, deps.config.mailDomain ?? 'localhost');
          if (glass.eventId) await deliverQueuedEmails(deps, `break-glass:${glass.eventId}`, glass.outboxIds);
          ctx.status = glass.added ? 201 : 200;
          ctx.body = { ...(await careTeamAnswer(params.id)), breakGlass: glass.eventId ? { id: glass.eventId } : null };
          return;
        }
        const asked = await requestCareTeamAddition(db, actor, params.id, user);
        if (asked === 'member') {
          ctx.status = 200;
          ctx.body = await careTeamAnswer(params.id);
          return;
        }
        ctx.status = asked.created ? 202 : 200;
        ctx.set('Location', requestPath(params.id, asked.request.id));
        ctx.body = {
          ...(await careTeamAnswer(params.id)),
          request: { ...asked.request, location: requestPath(params.id, asked.request.id) },
          detail: 'the addition waits for a clinician of the care team to confirm it',
        };
      },
    }),
    route({
      method: 'post',
      path: '/patients/:id/clinicians/requests/:requestId/confirm',
      response: R.careTeam, problems: [409],
      summary: 'Confirm an admin’s request to add a clinician to the care team: the clinician joins it',
      tag: TAG,
      roles: CLINICIAN,
      access: "Clinicians on the patient's care team only. Admin does not pass: the confirmation is the team's.",
      params: careTeamRequestParams,
      handler: async ({ params, actor, ctx }) => {
        await phi.guard(ctx, actor, params.id, 'patient', []);
        const confirmed = await confirmCareTeamRequest(db, actor, params.id, params.requestId).catch(conflict);
        if (confirmed === 'no-request') throw problems.notFound(`care-team request ${params.requestId}`);
        ctx.body = { ...(await careTeamAnswer(params.id)), request: confirmed };
      },
    }),
    route({
      method: 'get',
      path: '/patients/:id/break-glass',
      response: R.breakGlassList,
      summary: 'Break-glass additions to the patient’s care team, newest first: who added whom, when and why',
      tag: TAG,
      roles: PRIVACY_OFFICER,
      access: PRIVACY_OFFICER_ACCESS,
      params: patientParams,
      handler: async ({ params, actor, ctx }) => {
        requirePrivacyOfficer(actor);
        if (!(await db('patients').where({ id: params.id }).first('id'))) throw problems.notFound(`patient ${params.id}`);
        const events = await listBreakGlass(db, params.id);
        await appendAudit(db, {
          actorId: actor.userId,
          actor: actor.username,
          action: 'patient.break_glass_log_read',
          entityType: 'patient',
          entityId: params.id,
          details: { events: events.map((e) => e.id) },
        });
        ctx.body = { patientId: params.id, items: events };
      },
    }),
    route({
      method: 'delete',
      path: '/patients/:id/clinicians/:username',
      response: { 204: null }, problems: [409],
      summary: 'Take a clinician off the care team; refused (409) when no other active clinician would remain',
      tag: TAG,
      roles: CLINICIAN,
      access: CARE_TEAM_ACCESS,
      params: careTeamMemberParams,
      handler: async ({ params, actor, ctx }) => {
        await requireCareTeamManager(db, actor, params.id);
        const user = await findUserByUsername(db, params.username);
        if (!user) throw problems.notFound(`${params.username} on this care team`);
        const outcome = await removeFromCareTeam(db, actor, params.id, user).catch(conflict);
        if (outcome === 'no-patient') throw problems.notFound(`patient ${params.id}`);
        if (outcome === 'not-member') throw problems.notFound(`${params.username} on this care team`);
        ctx.status = 204;
      },
    }),

    route({
      method: 'post',
      path: '/patients/:id/notes',
      response: { 201: R.note },
      summary: 'Add a SOAP note: subjective/objective/assessment/plan, or text with S:/O:/A:/P: headings; and noteTime',
      tag: TAG,
      roles: CLINICIAN,
      access: PHI_ACCESS,
      params: patientParams,
      body: createNoteBody,
      handler: async ({ params, body, actor, ctx }) => {
        const note = await addNote(deps, actor, params.id, body, phiVia(ctx));
        ctx.status = 201;
        ctx.set('Location', notePath(params.id, note.id));
        ctx.set('ETag', etag(note.version));
        ctx.body = note;
      },
    }),
    route({
      method: 'get',
      path: '/patients/:id/notes',
      response: R.cursorPage(R.note), problems: [409],
      summary: "The patient's notes by note time (sort=-note_time, newest first, by default), paged (limit, cursor)",
      tag: TAG,
      roles: CLINICIAN,
      access: PHI_ACCESS,
      params: patientParams,
      query: listNotesQuery,
      handler: async ({ params, query, actor, ctx }) => {
        await phi.guard(ctx, actor, params.id, 'note_list');
        if (query.cursor && !(await noteExists(db, params.id, query.cursor.id))) {
          throw problems.conflict('cursor-expired', 'the page this cursor continues has changed; start again without it');
        }
        const page = await listNotes(db, params.id, { desc: query.sort.desc, limit: query.limit, afterId: query.cursor?.id });
        await phi.read(ctx, actor, { kind: 'note_list', patientIds: [params.id], recordIds: page.items.map((note) => note.id) });
        ctx.body = pageBody(page, query);
      },
    }),
    route({
      method: 'get',
      path: '/patients/:id/notes/:noteId',
      response: R.note,
      summary: 'A note, with its version as ETag',
      tag: TAG,
      roles: CLINICIAN,
      access: PHI_ACCESS,
      params: noteParams,
      handler: async ({ params, actor, ctx }) => {
        await phi.guard(ctx, actor, params.id, 'note', [params.noteId]);
        const note = await findNote(db, params.id, params.noteId);
        if (!note) throw problems.notFound(`note ${params.noteId}`);
        await phi.read(ctx, actor, { kind: 'note', patientIds: [params.id], recordIds: [note.id] });
        ctx.set('ETag', etag(note.version));
        ctx.body = note;
      },
    }),
    route({
      method: 'get',
      path: '/patients/:id/notes/:noteId/versions',
      response: R.noteVersions,
      summary:
        'Every version of a note, oldest first: its text and time, who made it and when (an edit appends a version; a deletion is the last one)',
      tag: TAG,
      roles: CLINICIAN,
      access: PHI_ACCESS,
      params: noteParams,
      handler: async ({ params, actor, ctx }) => {
        await phi.guard(ctx, actor, params.id, 'note_versions', [params.noteId]);
        const versions = await listNoteVersions(db, params.id, params.noteId);
        if (!versions.length) throw problems.notFound(`note ${params.noteId}`);
        await phi.read(ctx, actor, { kind: 'note_versions', patientIds: [params.id], recordIds: [params.noteId] });
        ctx.body = { patientId: params.id, noteId: params.noteId, versions };
      },
    }),
    route({
      method: 'put',
      path: '/patients/:id/notes/:noteId',
      response: R.note, problems: [409, 412, 428],
      summary: 'Replace a note, given the version read (body.version or If-Match); 409 when it has changed since, 428 without one',
      tag: TAG,
      roles: CLINICIAN,
      access: PHI_ACCESS,
      params: noteParams,
      body: updateNoteBody,
      handler: async ({ params, body, actor, ctx }) => {
        const version = expectedVersion(ctx, body.version, true)!;
        const result = await replaceNote(deps, actor, params.id, params.noteId, version, body, phiVia(ctx)).catch(conflict);
        if (!result) throw problems.notFound(`note ${params.noteId}`);
        ctx.set('ETag', etag(result.note.version));
        ctx.body = result.note;
      },
    }),
    route({
      method: 'delete',
      path: '/patients/:id/notes/:noteId',
      response: { 204: null }, problems: [409],
      summary: 'Delete a note; with If-Match, only if it is still that version',
      tag: TAG,
      roles: CLINICIAN,
      access: PHI_ACCESS,
      params: noteParams,
      handler: async ({ params, actor, ctx }) => {
        const version = expectedVersion(ctx, undefined, false);
        const deleted = await removeNote(deps, actor, params.id, params.noteId, version).catch(conflict);
        if (!deleted) throw problems.notFound(`note ${params.noteId}`);
        ctx.status = 204;
      },
    }),
  ];
}
