import type { Knex } from 'knex';
import { durationMs } from '../common/durations';
import type { Role } from '../common/roles';
import { appendAudit } from './audit';

/**
 * The gate: one check, used before a person's action is recorded, of whether the person is fit for the work. The
 * API runs it before it sends the Update, and the recording activity runs it again inside the transaction that
 * writes the action. It is a list of checks; each names what is missing: the role, training on the currently
 * effective version of every controlled document that governs the activity, and, where the activity is configured
 * to require them (gate_activity_requirements), a current competency assessment and an active authorisation for
 * the activity and its scope.
 */

/** A gated activity: '<process>.<what>' with an optional qualifier, e.g. 'document.review.sop', 'capa.verify_effectiveness'. */
export type GateActivity = string;

export const GATED_ACTIVITY_PATTERN = /^[a-z_]+(\.[a-z_]+){1,3}$/;

/** The activity a reviewer of a document of this type performs; its governing documents say what they must know. */
export const documentReviewActivity = (docType: string): GateActivity => `document.review.${docType}`;
export const CAPA_VERIFICATION: GateActivity = 'capa.verify_effectiveness';
export const CAPA_CLOSURE: GateActivity = 'capa.close';
export const SAMPLE_ACCEPTANCE_WITH_DEVIATION: GateActivity = 'sample.accept_with_deviation';
export const RESULT_VERIFICATION: GateActivity = 'result.verify';
export const INSTRUMENT_BOOKING: GateActivity = 'instrument.book';
/** The lab director's release of a sample's report (its results leave the lab). */
export const RESULT_RELEASE: GateActivity = 'result.release';

/** What an authorisation or competency covers within an activity: every scope ('*') or one (a test code, an instrument). */
export const ANY_SCOPE = '*';
export const SCOPE_PATTERN = /^(\*|[A-Za-z0-9][A-Za-z0-9._-]{0,63})$/;

export interface GatePerson {
  userId: string;
  roles: readonly Role[];
}

export type Missing =
  | { kind: 'role'; roles: Role[] }
  | {
      kind: 'training';
      document: string;
      version: number;
      /** not_assigned: no assignment for the version; open: assigned, not signed; grace_over: the earlier version's training no longer counts. */
      reason: 'not_assigned' | 'open' | 'grace_over';
      dueAt: string | null;
    }
  | {
      kind: 'competency';
      activity: GateActivity;
      scope: string;
      /** none: never assessed; not_competent: the latest assessment found them not competent; expired: its next due date passed. */
      reason: 'none' | 'not_competent' | 'expired';
      dueAt: string | null;
    }
  | {
      kind: 'authorisation';
      activity: GateActivity;
      scope: string;
      /** none: never authorised; revoked: the last one was revoked; expired: its validity ended; not_yet_valid: it starts later. */
      reason: 'none' | 'revoked' | 'expired' | 'not_yet_valid';
      dueAt: null;
    };

export interface GateRequest {
  activity: GateActivity;
  /** The person must hold one of these (the action's own rule); absent: the action's own checks judge roles. */
  roles?: readonly Role[];
  /** What within the activity: a test code, an instrument code; authorisations and assessments for '*' cover every scope. */
  scope?: string;
}

export interface GateCheck {
  name: string;
  missing(db: Knex | Knex.Transaction, person: GatePerson, request: GateRequest, now: Date): Promise<Missing[]>;
}

const roleCheck: GateCheck = {
  name: 'role',
  async missing(_db, person, request) {
    if (!request.roles?.length || request.roles.some((role) => person.roles.includes(role))) return [];
    return [{ kind: 'role', roles: [...request.roles] }];
  },
};

interface GoverningRow {
  document_id: string;
  number: string;
  version: number;
  effective_at: Date;
  due: string;
  grace: 'until_due' | 'none';
  /** The earliest version whose training still counts: the latest one that asked for retraining. */
  baseline: number;
}

/**
 * For every document governing the activity that has an effective version and a requirement in force: the person
 * passes with a sign-off on the baseline version or later (later versions that needed no retraining keep it);
 * under the grace policy `until_due` an earlier version's sign-off counts until their assignment for the effective
 * version is due (until the effective date plus the requirement's due period while they have none).
 *
 * The requirement document control set with the effective version counts from the moment the version is effective,
 * before its training campaign has written it to training_requirements, and a version whose impact is undecided is
 * judged as the campaign will decide it: there is no window in which a new requirement lets anyone through.
 */
const trainingCheck: GateCheck = {
  name: 'training',
  async missing(db, person, request, now) {
    const governing: GoverningRow[] = (
      await db.raw(
        `with governing as (
           select d.id as document_id, d.number, v.version, v.effective_at,
                  coalesce(v.training_requirement->>'due', r.due) as due,
                  coalesce(v.training_requirement->>'grace', r.grace) as grace,
                  coalesce((v.training_requirement->>'retrainOnRevision')::boolean, r.retrain_on_revision) as retrain_on_revision,
                  r.document_id is not null as had_requirement
             from activity_governing_documents g
             join documents d on d.id = g.document_id
             join document_versions v on v.document_id = d.id and v.state = 'effective'
             left join training_requirements r on r.document_id = d.id
            where g.activity = ?
              and v.training_impact is distinct from 'retire'
              and (v.training_requirement is not null or r.active)
         )
         select g.document_id, g.number, g.version, g.effective_at, g.due, g.grace,
                (select max(b.version) from document_versions b
                  where b.document_id = g.document_id and b.version <= g.version and b.effective_at is not null
                    and coalesce(b.training_impact,
                                 case when not g.had_requirement or g.retrain_on_revision then 'retrain' else 'no_retraining' end)
                        <> 'no_retraining') as baseline
           from governing g
          order by g.number`,
        [request.activity],
      )
    ).rows;
    if (!governing.length) return [];
    const assignments: { document_id: string; version: number; state: string; due_at: Date }[] = await db('training_assignments')
      .where({ user_id: person.userId })
      .whereIn('document_id', governing.map((g) => g.document_id))
      .whereIn('state', ['completed', 'assigned'])
      .select('document_id', 'version', 'state', 'due_at');
    const missing: Missing[] = [];
    for (const g of governing) {
      const mine = assignments.filter((a) => a.document_id === g.document_id);
      const signed = mine.filter((a) => a.state === 'completed').map((a) => a.version);
      const baseline = g.baseline ?? g.version;
      if (signed.some((v) => v >= baseline)) continue;
      const current = mine.find((a) => a.version === g.version && a.state === 'assigned');
      const graceUntil = current ? current.due_at.getTime() : g.effective_at.getTime() + durationMs(g.due);
      if (g.grace === 'until_due' && signed.length && now.getTime() < graceUntil) continue;
      missing.push({
        kind: 'training',
        document: g.number,
        version: g.version,
        reason: signed.length ? 'grace_over' : current ? 'open' : 'not_assigned',
        dueAt: current ? current.due_at.toISOString() : null,
      });
    }
    return missing;
  },
};

/** What the activity is configured to require beyond role and training; nothing when it has no row. */
async function requirementsOf(db: Knex | Knex.Transaction, activity: GateActivity): Promise<{ competency: boolean; authorisation: boolean }> {
  const row = await db('gate_activity_requirements').where({ activity }).first('competency', 'authorisation');
  return { competency: Boolean(row?.competency), authorisation: Boolean(row?.authorisation) };
}

const scopesOf = (request: GateRequest) => [...new Set([ANY_SCOPE, request.scope ?? ANY_SCOPE])];
const scopeLabel = (request: GateRequest) => request.scope ?? ANY_SCOPE;

/**
 * Where required: the person's latest assessment for the activity (in its scope or every scope) found them
 * competent and is not past its next due date. A later "not competent" outweighs an earlier pass.
 */
const competencyCheck: GateCheck = {
  name: 'competency',
  async missing(db, person, request, now) {
    if (!(await requirementsOf(db, request.activity)).competency) return [];
    const latest: { outcome: string; next_due_at: Date | null } | undefined = await db('competency_assessments')
      .where({ user_id: person.userId, activity: request.activity })
      .whereIn('scope', scopesOf(request))
      .orderBy([{ column: 'assessed_at', order: 'desc' }, { column: 'recorded_at', order: 'desc' }])
      .first('outcome', 'next_due_at');
    const base = { kind: 'competency' as const, activity: request.activity, scope: scopeLabel(request) };
    if (!latest) return [{ ...base, reason: 'none', dueAt: null }];
    if (latest.outcome !== 'competent' || !latest.next_due_at) return [{ ...base, reason: 'not_competent', dueAt: null }];
    if (latest.next_due_at.getTime() <= now.getTime()) return [{ ...base, reason: 'expired', dueAt: latest.next_due_at.toISOString() }];
    return [];
  },
};

/** Where required: a standing (not ended) authorisation for the activity, in its scope or every scope, valid now. */
const authorisationCheck: GateCheck = {
  name: 'authorisation',
  async missing(db, person, request, now) {
    if (!(await requirementsOf(db, request.activity)).authorisation) return [];
    const rows: { valid_from: Date; valid_until: Date | null; ended_at: Date | null; ended_because: string | null }[] = await db('authorisations')
      .where({ user_id: person.userId, activity: request.activity })
      .whereIn('scope', scopesOf(request))
      .orderBy('granted_at', 'desc')
      .select('valid_from', 'valid_until', 'ended_at', 'ended_because');
    const t = now.getTime();
    const standing = rows.filter((r) => !r.ended_at);
    if (standing.some((r) => r.valid_from.getTime() <= t && (!r.valid_until || r.valid_until.getTime() > t))) return [];
    const reason = standing.some((r) => r.valid_from.getTime() > t)
      ? 'not_yet_valid'
      : standing.length
        ? 'expired'
        : rows.some((r) => r.ended_because === 'revoked')
          ? 'revoked'
          : 'none';
    return [{ kind: 'authorisation', activity: request.activity, scope: scopeLabel(request), reason, dueAt: null }];
  },
};

/** The checks in the order they are reported. */
export const GATE_CHECKS: GateCheck[] = [roleCheck, trainingCheck, competencyCheck, authorisationCheck];

export type GateVerdict = { ok: true } | { ok: false; missing: Missing[] };

export async function checkGate(db: Knex | Knex.Transaction, person: GatePerson, request: GateRequest, now = new Date()): Promise<GateVerdict> {
  // One after another: inside a transaction the checks share one connection.
  const missing: Missing[] = [];
  for (const check of GATE_CHECKS) missing.push(...(await check.missing(db, person, request, now)));
  return missing.length ? { ok: false, missing } : { ok: true };
}

/** What is missing, as a person reads it: "training on SOP-0007 v3 (assigned, due …)". */
export function describeMissing(missing: Missing[]): string {
  return missing
    .map((m) => {
      if (m.kind === 'role') return `one of the roles ${m.roles.join(', ')}`;
      const what = (k: string, x: { activity: string; scope: string }) => `${k} for ${x.activity}${x.scope === ANY_SCOPE ? '' : ` (${x.scope})`}`;
      if (m.kind === 'competency') {
        const why = m.reason === 'none' ? 'never assessed' : m.reason === 'not_competent' ? 'the latest assessment found you not competent' : `reassessment was due ${m.dueAt}`;
        return `a current competency assessment ${what('', m).trimStart()} (${why})`;
      }
      if (m.kind === 'authorisation') {
        const why = { none: 'never granted', revoked: 'revoked', expired: 'its validity ended', not_yet_valid: 'not valid yet' }[m.reason];
        return `an active ${what('authorisation', m)} (${why})`;
      }
      const why =
        m.reason === 'not_assigned'
          ? 'not assigned to you: ask document control whether the requirement names your role'
          : m.reason === 'open'
            ? `assigned${m.dueAt ? `, due ${m.dueAt}` : ''}, not yet signed`
            : 'your training on an earlier version no longer counts';
      return `training on ${m.document} v${m.version} (${why})`;
    })
    .join('; ');
}

/** The refusal in the trail: who was refused what, where (api or recording) and what was missing. */
export async function auditGateRefusal(
  db: Knex | Knex.Transaction,
  refusal: { person: { userId: string; username: string }; activity: GateActivity; entityType: string; entityId: string; at: 'api' | 'recording'; missing: Missing[] },
): Promise<void> {
  await appendAudit(db, {
    actorId: refusal.person.userId,
    actor: refusal.person.username,
    action: 'gate.refused',
    entityType: refusal.entityType,
    entityId: refusal.entityId,
    details: { activity: refusal.activity, checkedAt: refusal.at, missing: refusal.missing },
  });
}
