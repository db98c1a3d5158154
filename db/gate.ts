import type { Knex } from 'knex';
import { durationMs } from '../common/durations';
import type { Role } from '../common/roles';
import { appendAudit } from './audit';

/**
 * The gate: one check, used before a person's action is recorded, of whether the person is fit for the work. The
 * API runs it before it sends the Update, and the recording activity runs it again inside the transaction that
 * writes the action. It is a list of checks; each names what is missing. Today: the role, and training on the
 * currently effective version of every controlled document that governs the activity. Competency assessments and
 * authorisations are further checks of the same shape (GateCheck), added to GATE_CHECKS.
 */

/** A gated activity: '<process>.<what>' with an optional qualifier, e.g. 'document.review.sop', 'capa.verify_effectiveness'. */
export type GateActivity = string;

export const GATED_ACTIVITY_PATTERN = /^[a-z_]+(\.[a-z_]+){1,3}$/;

/** The activity a reviewer of a document of this type performs; its governing documents say what they must know. */
export const documentReviewActivity = (docType: string): GateActivity => `document.review.${docType}`;
export const CAPA_VERIFICATION: GateActivity = 'capa.verify_effectiveness';

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
    };

export interface GateRequest {
  activity: GateActivity;
  /** The person must hold one of these (the action's own rule); absent: the action's own checks judge roles. */
  roles?: readonly Role[];
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
 * For every document governing the activity that has an effective version and an active requirement: the person
 * passes with a sign-off on the baseline version or later (later versions that needed no retraining keep it);
 * under the grace policy `until_due` an earlier version's sign-off counts until their assignment for the effective
 * version is due (until the effective date plus the requirement's due period while they have none).
 */
const trainingCheck: GateCheck = {
  name: 'training',
  async missing(db, person, request, now) {
    const governing: GoverningRow[] = (
      await db.raw(
        `select d.id as document_id, d.number, v.version, v.effective_at, r.due, r.grace,
                (select max(b.version) from document_versions b
                  where b.document_id = d.id and b.version <= v.version and b.effective_at is not null
                    and b.training_impact is distinct from 'no_retraining') as baseline
           from activity_governing_documents g
           join documents d on d.id = g.document_id
           join document_versions v on v.document_id = d.id and v.state = 'effective'
           join training_requirements r on r.document_id = d.id and r.active
          where g.activity = ?
          order by d.number`,
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

/** The checks in the order they are reported; competency and authorisation checks join this list. */
export const GATE_CHECKS: GateCheck[] = [roleCheck, trainingCheck];

export type GateVerdict = { ok: true } | { ok: false; missing: Missing[] };

export async function checkGate(db: Knex | Knex.Transaction, person: GatePerson, request: GateRequest, now = new Date()): Promise<GateVerdict> {
  const missing = (await Promise.all(GATE_CHECKS.map((check) => check.missing(db, person, request, now)))).flat();
  return missing.length ? { ok: false, missing } : { ok: true };
}

/** What is missing, as a person reads it: "training on SOP-0007 v3 (assigned, due …)". */
export function describeMissing(missing: Missing[]): string {
  return missing
    .map((m) => {
      if (m.kind === 'role') return `one of the roles ${m.roles.join(', ')}`;
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
