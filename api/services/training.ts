import type { z } from 'zod';
import type { Actor } from '../../common/roles';
import { signOffGrantedArgs, TRAINING_SIGN_OFF, trainingIds, type SignOffArgs, type TrainingImpact, type TrainingRequirementInput } from '../../common/training';
import { auditGateRefusal, checkGate, describeMissing, type GateRequest } from '../../db/gate';
import type { Db } from '../../db/knex';
import { assignmentsToCancel, findAssignment, findRequirement, versionsToAssign } from '../../db/training';
import type { VersionRow } from '../../db/documents';
import type { ApiDeps } from '../deps';
import { Problem, problems } from '../problem';
import type { signOffBody } from '../schemas/training';
import { grantAction, verifySigner } from '../signing';
import { endAssignments, startAssignmentRun } from '../temporal/training';

/**
 * The gate as the API applies it before sending an Update (db/gate.ts): a refusal is audited, logged without
 * anything but IDs and names, and answered 403 naming what is missing. The recording activity checks again.
 */
export async function requireGate(
  deps: Pick<ApiDeps, 'db' | 'log'>,
  actor: Actor,
  request: GateRequest,
  subject: { entityType: string; entityId: string },
): Promise<void> {
  const verdict = await checkGate(deps.db, { userId: actor.userId, roles: actor.roles }, request);
  if (verdict.ok) return;
  await auditGateRefusal(deps.db, { person: actor, activity: request.activity, ...subject, at: 'api', missing: verdict.missing });
  deps.log.info({ user: actor.username, activity: request.activity, entity: `${subject.entityType}:${subject.entityId}`, missing: verdict.missing }, 'gate refused');
  throw new Problem(403, 'gate-refused', 'Not cleared for this work', `${actor.username} may not do ${request.activity}: missing ${describeMissing(verdict.missing)}`, {
    activity: request.activity,
    missing: verdict.missing,
  });
}

/**
 * The training a submission proposes, checked: only document control sets it (403), a retirement carries no new
 * requirement, and an impact decision needs a requirement (the document's or this one) to act on (422).
 */
export async function trainingProposal(
  db: Db,
  actor: Actor,
  row: VersionRow,
  body: { training?: TrainingRequirementInput; trainingImpact?: TrainingImpact },
): Promise<{ requirement?: TrainingRequirementInput; impact?: TrainingImpact }> {
  if (!body.training && !body.trainingImpact) return {};
  if (!actor.roles.includes('document_control')) throw problems.forbidden('only document control sets training requirements and decides their impact');
  if (body.training && body.trainingImpact === 'retire') {
    throw problems.unprocessable('training-impact', 'a version that retires the training requirement cannot set a new one', {
      errors: [{ field: 'body.trainingImpact', detail: 'retire with a new requirement' }],
    });
  }
  if (body.trainingImpact && !body.training && !(await findRequirement(db, row.document_id))) {
    throw problems.unprocessable('training-impact', `${row.number} has no training requirement for the impact decision to act on`, {
      errors: [{ field: 'body.trainingImpact', detail: 'no training requirement' }],
    });
  }
  return { requirement: body.training, impact: body.trainingImpact };
}

/**
 * A sign-off request: only the assigned person signs (another user's assignment answers 403, whatever their
 * roles: training is not delegated), re-authenticated with their signing password over the version's text hash.
 */
export async function signOffArgs(
  deps: ApiDeps,
  actor: Actor,
  at: { username: string; number: string; version: number },
  body: z.infer<typeof signOffBody>,
): Promise<{ workflowId: string; args: SignOffArgs }> {
  const workflowId = trainingIds.assignment(at.username, at.number, at.version);
  const assignment = await findAssignment(deps.db, workflowId);
  if (!assignment) throw problems.notFound(`training of ${at.username} on ${at.number} v${at.version}`);
  if (assignment.userId !== actor.userId) {
    throw new Problem(403, 'not-assignee', 'Not allowed', `only ${at.username} signs their own training on ${at.number} v${at.version}; it cannot be delegated`);
  }
  if (assignment.state !== 'assigned') {
    throw problems.conflict('run-finished', `this training is ${assignment.state}; nothing more can be done`);
  }
  const signature = await verifySigner(deps, actor, body.signature, { entityType: 'training', entityId: workflowId });
  const grant = await grantAction(deps, actor, { workflowId, action: TRAINING_SIGN_OFF, args: signOffGrantedArgs({ signature }), signature });
  return { workflowId, args: { actor, grant, signature } };
}

/**
 * After a user's roles changed: their open assignments on documents whose requirement names none of their roles
 * now are cancelled, and effective versions a new role requires are assigned. Each run believes it only when
 * Postgres bears it out. Answers the runs told and started.
 */
export async function trainingAfterRoleChange(deps: Pick<ApiDeps, 'db' | 'temporal' | 'config'>, user: { id: string; username: string }) {
  const cancelled = await assignmentsToCancel(deps.db, user.id);
  await endAssignments(deps.temporal, cancelled, 'role_removed');
  const started: string[] = [];
  for (const v of await versionsToAssign(deps.db, user.id)) {
    started.push(
      await startAssignmentRun(deps.temporal, deps.config.taskQueue, {
        userId: user.id,
        username: user.username,
        ...v,
        requestedBy: `role-change:${user.username}`,
      }),
    );
  }
  return { cancelled, started };
}
