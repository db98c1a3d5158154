import type { Knex } from 'knex';
import type { Context } from 'koa';
import type { Actor } from '../common/roles';
import type { Db } from '../db/knex';
import { isOnCareTeam } from '../db/patients';
import { recordPhiAccess, type PhiAccessOutcome, type PhiRecordKind } from '../db/phi-access';
import type { Logger } from '../platform/logger';
import type { ApiDeps } from './deps';
import { Problem, problems } from './problem';

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
  if (lock === 'update') query.forNoKeyUpdate();
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

/**
 * The access log names who read a patient's record: the privacy officer's to review, no one else's. Admin does
 * not pass either; an admin who could read it could also learn whose records a colleague consults.
 */
export function requirePrivacyOfficer(actor: Actor): void {
  if (!actor.roles.includes('privacy_officer')) {
    throw problems.forbidden('the PHI access log is open only to the privacy_officer role');
  }
}

export const PRIVACY_OFFICER_ACCESS = 'The privacy_officer role only. Admin does not pass. Every read of the log is audited.';

/** How the OpenAPI document describes who may call a PHI route. */
export const PHI_ACCESS = "Clinicians on the patient's care team only. Admin does not pass: the record is PHI.";

/** What an answer disclosed: its kind, every patient it shows and the IDs of the records shown. */
export interface PhiRead {
  kind: PhiRecordKind;
  patientIds: string[];
  recordIds?: string[];
}

/**
 * The request a disclosure went through: the route pattern the router matched, never the URL, whose query may
 * hold a name being searched for.
 */
export interface PhiVia {
  method: string;
  route: string;
  requestId?: string;
}

export function phiVia(ctx: Context): PhiVia {
  return {
    method: ctx.method,
    route: typeof ctx._matchedRoute === 'string' ? ctx._matchedRoute : (ctx.routerPath ?? 'unmatched'),
    requestId: typeof ctx.state.requestId === 'string' ? ctx.state.requestId : undefined,
  };
}

function accessEvent(actor: Actor, via: PhiVia, outcome: PhiAccessOutcome, read: PhiRead) {
  return {
    userId: actor.userId,
    username: actor.username,
    kind: read.kind,
    patientIds: read.patientIds,
    recordIds: read.recordIds ?? [],
    outcome,
    ...via,
  };
}

/**
 * Logs a disclosure of PHI (HIPAA 164.312(b)) before its answer leaves; a read that cannot be logged is not
 * answered (503). Inside a write's transaction, a failure also undoes the write, so the caller can simply retry.
 */
export async function logPhiRead(db: Knex, actor: Actor, via: PhiVia, read: PhiRead, log?: Logger): Promise<void> {
  try {
    await recordPhiAccess(db, accessEvent(actor, via, 'read', read));
  } catch (err) {
    // The name and SQLSTATE say what broke; the message could quote a value.
    log?.error(
      { err: err instanceof Error ? err.name : 'unknown', code: (err as { code?: string }).code, route: via.route },
      'could not log a PHI read; the read is refused',
    );
    throw new Problem(
      503,
      'access-log-unavailable',
      'The PHI access log is unavailable',
      'patient records are answered only once the read is logged; try again shortly',
      {},
      { 'Retry-After': '5' },
    );
  }
}

/** The access log as a route writes it. */
export function phiAccessLog({ db, log }: Pick<ApiDeps, 'db' | 'log'>) {
  /** A refused read, logged as denied; the refusal stands even when it cannot be logged: it disclosed nothing. */
  const denied = (ctx: Context, actor: Actor, read: PhiRead) =>
    recordPhiAccess(db, accessEvent(actor, phiVia(ctx), 'denied', read)).then(
      () => undefined,
      (logErr: unknown) => {
        log.error({ err: logErr instanceof Error ? logErr.name : String(logErr), kind: read.kind }, 'could not log a refused PHI read');
      },
    );
  return {
    /** Call before the answer is set. */
    read: (ctx: Context, actor: Actor, read: PhiRead) => logPhiRead(db, actor, phiVia(ctx), read, log),

    denied,

    /**
     * requirePatientAccess, with a refusal logged as denied when the patient exists (an unknown ID names no one).
     * The refusal stands even when it cannot be logged: it disclosed nothing.
     */
    async guard(ctx: Context, actor: Actor, patientId: string, kind: PhiRecordKind, recordIds: string[] = []): Promise<void> {
      try {
        await requirePatientAccess(db, actor, patientId);
      } catch (err) {
        if (err instanceof Problem && err.status === 403 && (await db('patients').where({ id: patientId }).first('id'))) {
          await denied(ctx, actor, { kind, patientIds: [patientId], recordIds });
        }
        throw err;
      }
    },
  };
}

export type PhiAccessLog = ReturnType<typeof phiAccessLog>;
