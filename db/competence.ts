import type { Knex } from 'knex';
import { nextCompetencyDue, type AssessmentMethod, type AssessmentOutcome, type CompetencyPolicy } from '../common/competence';
import type { Actor } from '../common/roles';
import type { SignatureInput } from '../common/signatures';
import { appendAudit } from './audit';
import type { Db } from './knex';
import { recordSignature } from './signatures';

/** Competency assessments, authorisations and what each gated activity requires (see db/gate.ts). */

export interface ActivityRequirements {
  activity: string;
  competency: boolean;
  authorisation: boolean;
}

export async function activityRequirements(db: Db | Knex.Transaction, activity: string): Promise<ActivityRequirements> {
  const row = await db('gate_activity_requirements').where({ activity }).first('competency', 'authorisation');
  return { activity, competency: Boolean(row?.competency), authorisation: Boolean(row?.authorisation) };
}

export async function setActivityRequirements(db: Db, req: ActivityRequirements, by: Actor): Promise<ActivityRequirements> {
  return db.transaction(async (trx) => {
    const before = await activityRequirements(trx, req.activity);
    await trx('gate_activity_requirements')
      .insert({ activity: req.activity, competency: req.competency, authorisation: req.authorisation, set_by: by.username, set_at: trx.fn.now() })
      .onConflict('activity')
      .merge();
    const changes = (['competency', 'authorisation'] as const)
      .filter((f) => before[f] !== req[f])
      .map((f) => ({ field: f, old: before[f], new: req[f] }));
    await appendAudit(trx, { actorId: by.userId, actor: by.username, action: 'gate.requirements_set', entityType: 'gate', entityId: req.activity, details: { changes } });
    return activityRequirements(trx, req.activity);
  });
}

export interface AssessmentView {
  id: string;
  username: string;
  activity: string;
  scope: string;
  method: string;
  outcome: string;
  assessedAt: string;
  nextDueAt: string | null;
  assessor: string;
  evidence: string | null;
  recordedAt: string;
}

const assessmentView = (r: Record<string, unknown>): AssessmentView => ({
  id: r.id as string,
  username: r.username as string,
  activity: r.activity as string,
  scope: r.scope as string,
  method: r.method as string,
  outcome: r.outcome as string,
  assessedAt: (r.assessed_at as Date).toISOString(),
  nextDueAt: r.next_due_at ? (r.next_due_at as Date).toISOString() : null,
  assessor: r.assessor as string,
  evidence: (r.evidence as string | null) ?? null,
  recordedAt: (r.recorded_at as Date).toISOString(),
});

/**
 * Records an assessment; a competent one gets its next due date from the policy (counting the person's earlier
 * competent assessments for the activity and scope). Written with its audit event in one transaction.
 */
export async function recordAssessment(
  db: Db,
  a: { userId: string; activity: string; scope: string; method: AssessmentMethod; outcome: AssessmentOutcome; assessedAt: Date; evidence?: string },
  assessor: Actor,
  policy: CompetencyPolicy,
): Promise<AssessmentView> {
  return db.transaction(async (trx) => {
    // One person's assessments for one activity are numbered one at a time, so two recorded at once count each other.
    await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`competency:${a.userId}:${a.activity}:${a.scope}`]);
    const earlier = Number(
      (
        await trx('competency_assessments')
          .where({ user_id: a.userId, activity: a.activity, scope: a.scope, outcome: 'competent' })
          .where('assessed_at', '<', a.assessedAt)
          .count({ n: '*' })
          .first()
      )?.n ?? 0,
    );
    const nextDue = a.outcome === 'competent' ? nextCompetencyDue(a.assessedAt, earlier, policy) : null;
    const [row] = await trx('competency_assessments')
      .insert({
        user_id: a.userId,
        activity: a.activity,
        scope: a.scope,
        method: a.method,
        outcome: a.outcome,
        assessed_at: a.assessedAt,
        next_due_at: nextDue,
        assessor_id: assessor.userId,
        assessor: assessor.username,
        evidence: a.evidence ?? null,
      })
      .returning('*');
    await appendAudit(trx, {
      actorId: assessor.userId,
      actor: assessor.username,
      action: 'competency.assessed',
      entityType: 'competency',
      entityId: row.id,
      details: { userId: a.userId, activity: a.activity, scope: a.scope, method: a.method, outcome: a.outcome, nextDueAt: nextDue?.toISOString() ?? null },
    });
    const username = (await trx('users').where({ id: a.userId }).first('username')).username;
    return assessmentView({ ...row, username });
  });
}

export interface AuthorisationView {
  id: string;
  username: string;
  activity: string;
  scope: string;
  validFrom: string;
  validUntil: string | null;
  grantedBy: string;
  grantedAt: string;
  state: 'active' | 'pending' | 'expired' | 'revoked' | 'renewed';
  endedAt: string | null;
  endedBy: string | null;
  endReason: string | null;
  signature: { printedName: string; meaning: string; signedAt: string; contentHash: string } | null;
}

const AUTH_COLUMNS = [
  'a.*',
  'u.username',
  's.printed_name as sig_printed_name',
  's.meaning as sig_meaning',
  's.signed_at as sig_signed_at',
  's.content_hash as sig_content_hash',
];

function authorisationView(r: Record<string, unknown>, now = new Date()): AuthorisationView {
  const from = r.valid_from as Date;
  const until = r.valid_until as Date | null;
  const ended = r.ended_because as 'revoked' | 'renewed' | null;
  const state = ended ?? (from.getTime() > now.getTime() ? 'pending' : until && until.getTime() <= now.getTime() ? 'expired' : 'active');
  return {
    id: r.id as string,
    username: r.username as string,
    activity: r.activity as string,
    scope: r.scope as string,
    validFrom: from.toISOString(),
    validUntil: until ? until.toISOString() : null,
    grantedBy: r.granted_by as string,
    grantedAt: (r.granted_at as Date).toISOString(),
    state,
    endedAt: r.ended_at ? (r.ended_at as Date).toISOString() : null,
    endedBy: (r.ended_by as string | null) ?? null,
    endReason: (r.end_reason as string | null) ?? null,
    signature: r.sig_meaning
      ? {
          printedName: r.sig_printed_name as string,
          meaning: r.sig_meaning as string,
          signedAt: (r.sig_signed_at as Date).toISOString(),
          contentHash: r.sig_content_hash as string,
        }
      : null,
  };
}

const authorisations = (db: Db | Knex.Transaction) =>
  db('authorisations as a').join('users as u', 'u.id', 'a.user_id').leftJoin('signatures as s', 's.id', 'a.signature_id');

export async function findAuthorisation(db: Db | Knex.Transaction, id: string): Promise<AuthorisationView | undefined> {
  const row = await authorisations(db).where('a.id', id).first(AUTH_COLUMNS);
  return row ? authorisationView(row) : undefined;
}

export type GrantOutcome = { ok: true; authorisation: AuthorisationView } | { ok: false; standing: AuthorisationView };

/**
 * Grants an authorisation with the grantor's signature, in one transaction with its audit event. A standing one
 * for the same person, activity and scope that is still valid, or not valid yet, refuses the grant (the caller
 * answers 409); one whose validity ended is closed as renewed by this grant.
 */
export async function grantAuthorisation(
  db: Db,
  g: { userId: string; activity: string; scope: string; validFrom: Date; validUntil: Date | null; statementHash: string },
  grantor: Actor,
  signature: SignatureInput,
): Promise<GrantOutcome> {
  return db.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`authorisation:${g.userId}:${g.activity}:${g.scope}`]);
    const standingRow = await authorisations(trx).where({ 'a.user_id': g.userId, 'a.activity': g.activity, 'a.scope': g.scope }).whereNull('a.ended_at').first(AUTH_COLUMNS);
    const now = new Date();
    if (standingRow) {
      const standing = authorisationView(standingRow, now);
      if (standing.state !== 'expired') return { ok: false, standing };
      await trx('authorisations').where({ id: standing.id }).update({ ended_at: trx.fn.now(), ended_by: grantor.username, ended_because: 'renewed', end_reason: 'renewed' });
    }
    const id = (await trx.raw('select gen_random_uuid() as id')).rows[0].id as string;
    const signatureId = await recordSignature(trx, {
      idempotencyKey: `authorisation:${id}`,
      entityType: 'authorisation',
      entityId: id,
      workflowId: `authorisation:${id}`,
      round: 1,
      stageIndex: 0,
      stageName: 'Grant',
      actor: grantor,
      signature,
    });
    await trx('authorisations').insert({
      id,
      user_id: g.userId,
      activity: g.activity,
      scope: g.scope,
      valid_from: g.validFrom,
      valid_until: g.validUntil,
      granted_by_id: grantor.userId,
      granted_by: grantor.username,
      signature_id: signatureId,
    });
    await appendAudit(trx, {
      actorId: grantor.userId,
      actor: grantor.username,
      action: 'authorisation.granted',
      entityType: 'authorisation',
      entityId: id,
      details: {
        userId: g.userId,
        activity: g.activity,
        scope: g.scope,
        validFrom: g.validFrom.toISOString(),
        validUntil: g.validUntil?.toISOString() ?? null,
        renewed: standingRow?.id ?? null,
        contentHash: g.statementHash,
      },
    });
    return { ok: true, authorisation: (await findAuthorisation(trx, id))! };
  });
}

/** Revokes a standing authorisation at once; answers undefined when it had already ended (the caller answers 409). */
export async function revokeAuthorisation(db: Db, id: string, reason: string, by: Actor): Promise<AuthorisationView | undefined> {
  return db.transaction(async (trx) => {
    const ended = await trx('authorisations')
      .where({ id })
      .whereNull('ended_at')
      .update({ ended_at: trx.fn.now(), ended_by: by.username, ended_because: 'revoked', end_reason: reason });
    if (!ended) return undefined;
    await appendAudit(trx, { actorId: by.userId, actor: by.username, action: 'authorisation.revoked', entityType: 'authorisation', entityId: id, details: { reason } });
    return findAuthorisation(trx, id);
  });
}

/** A person's competence record: every assessment (newest first) and every authorisation (newest first). */
export async function competenceOf(db: Db, userId: string): Promise<{ assessments: AssessmentView[]; authorisations: AuthorisationView[] }> {
  const assessments = await db('competency_assessments as c')
    .join('users as u', 'u.id', 'c.user_id')
    .where('c.user_id', userId)
    .orderBy([{ column: 'c.assessed_at', order: 'desc' }, { column: 'c.recorded_at', order: 'desc' }])
    .limit(500)
    .select('c.*', 'u.username');
  const auths = await authorisations(db).where('a.user_id', userId).orderBy('a.granted_at', 'desc').limit(500).select(AUTH_COLUMNS);
  return { assessments: assessments.map(assessmentView), authorisations: auths.map((r: Record<string, unknown>) => authorisationView(r)) };
}
