import { ApplicationFailure } from '@temporalio/activity';
import type { Knex } from 'knex';
import type { AssigneeRef } from '../common/assignees';
import { durationMs } from '../common/durations';
import { FailureType } from '../common/failures';
import type { Actor, Role } from '../common/roles';
import type { SignatureInput } from '../common/signatures';
import {
  READ_AND_UNDERSTOOD,
  signOffGrantedArgs,
  TRAINING_SIGN_OFF,
  trainingIds,
  type AssignmentEnding,
  type TrainingAssignmentInput,
  type TrainingCampaignInput,
  type TrainingImpact,
  type TrainingRequirementInput,
} from '../common/training';
import { appendAudit } from '../db/audit';
import { queueNotifications } from '../db/notifications';
import { resolveRecipients } from '../db/recipients';
import { recordSignature } from '../db/signatures';
import { closeTask, openTask } from '../db/tasks';
import { pgArray } from '../db/training';
import { auditGateRefusal, checkGate, describeMissing, type GatePerson, type GateRequest } from '../db/gate';
import type { ActivityDeps } from './deps';
import { activityKey } from './keys';
import { grantChecks, Refusal, type RecordRef } from './lib/grant-checks';

/** The assignment a run is about: IDs and the version's title, never anything about the person beyond their name. */
export type TrainingRef = Omit<TrainingAssignmentInput, 'requestedBy'> & { workflowId: string };

const SYSTEM = 'system:training';
/**
 * labflow keeps no line-manager relation: an overdue assignment is escalated to the QA managers, who own training
 * records (ISO 13485 6.2, 17025 6.2.5), and the person is told again.
 */
export const TRAINING_ESCALATION: AssigneeRef = { kind: 'role', role: 'qa_manager' };

const label = (ref: { documentNumber: string; version: number }) => `${ref.documentNumber} v${ref.version}`;
const taskKey = (ref: TrainingRef) => ref.workflowId;

interface RequirementRow {
  document_id: string;
  roles: Role[];
  due: string;
  reminder_before: string;
  retrain_on_revision: boolean;
  grace: string;
  active: boolean;
}

/**
 * The gate inside a recording transaction (db/gate.ts): refused, the transaction rolls back, the refusal is audited
 * on its own and the run hears a non-retryable GateRefused failure naming what is missing.
 */
export function gateInTransaction({ db }: Pick<ActivityDeps, 'db'>) {
  return async function requireGate(
    trx: Knex.Transaction,
    person: GatePerson & { username: string },
    request: GateRequest,
    subject: { entityType: string; entityId: string },
  ): Promise<void> {
    const verdict = await checkGate(trx, person, request);
    if (verdict.ok) return;
    await auditGateRefusal(db, { person, activity: request.activity, ...subject, at: 'recording', missing: verdict.missing });
    throw ApplicationFailure.create({
      type: FailureType.GateRefused,
      message: `${person.username} may not do ${request.activity}: missing ${describeMissing(verdict.missing)}`,
      details: [verdict.missing],
      nonRetryable: true,
    });
  };
}

export function trainingActivities({ db, mailer, publicUrl, mailDomain }: ActivityDeps) {
  const link = (ref: { documentNumber: string; version: number }) => `${publicUrl}/api/v1/documents/${ref.documentNumber}/versions/${ref.version}`;
  const checks = grantChecks({ db, mailer, mailDomain });
  const refOf = (ref: TrainingRef): RecordRef => ({
    workflowId: ref.workflowId,
    entityType: 'training',
    entityId: ref.workflowId,
    label: `${ref.username}'s training on ${label(ref)}`,
    link: link(ref),
    details: { document: ref.documentNumber, version: ref.version },
  });

  function audit(trx: Knex.Transaction, entityId: string, action: string, details: Record<string, unknown>, actor?: Actor, suffix = '') {
    return appendAudit(trx, {
      actorId: actor?.userId ?? null,
      actor: actor?.username ?? SYSTEM,
      action,
      entityType: 'training',
      entityId,
      details,
      idempotencyKey: activityKey(suffix),
    });
  }

  async function notify(trx: Knex.Transaction, to: AssigneeRef[], message: { kind: string; title: string; body: string; link: string }) {
    return queueNotifications(trx, await resolveRecipients(trx, to), { ...message, idempotencyKey: activityKey() }, mailDomain);
  }

  /** Applies the requirement document control proposed with this version, when it did; answers the one in force. */
  async function requirementInForce(trx: Knex.Transaction, c: TrainingCampaignInput, proposed: TrainingRequirementInput | null) {
    if (proposed) {
      const row = {
        document_id: c.documentId,
        roles: proposed.roles,
        due: proposed.due,
        reminder_before: proposed.reminderBefore,
        retrain_on_revision: proposed.retrainOnRevision,
        grace: proposed.grace,
        active: true,
        set_in_version: c.version,
        updated_at: trx.fn.now(),
        updated_by: SYSTEM,
      };
      await trx('training_requirements').insert(row).onConflict('document_id').merge();
      await audit(trx, c.documentNumber, 'training.requirement_set', { version: c.version, ...proposed }, undefined, 'requirement');
    }
    return (await trx('training_requirements').where({ document_id: c.documentId }).first()) as RequirementRow | undefined;
  }

  return {
    /**
     * Plans the campaign of a version that became effective. The proof is the record: the version must be effective
     * (written by its approval run). Applies the requirement document control set at submission and the impact it
     * decided (by default the requirement's policy on revisions), retires the requirement when so decided, and
     * answers who is to be assigned and which open assignments of earlier versions end.
     */
    async planTrainingCampaign(c: TrainingCampaignInput) {
      const ref: RecordRef = {
        workflowId: trainingIds.campaign(c.documentNumber, c.version),
        entityType: 'training',
        entityId: c.documentNumber,
        label: `the training campaign of ${label(c)}`,
        link: link(c),
      };
      return checks.recording(ref, 'training.campaign', async (trx) => {
        await trx('documents').where({ id: c.documentId }).forNoKeyUpdate().first('id');
        const version = await trx('document_versions')
          .where({ id: c.versionId, document_id: c.documentId, version: c.version })
          .first('state', 'training_requirement', 'training_impact');
        if (!version || !['effective', 'superseded', 'obsolete'].includes(version.state)) throw new Refusal('not_from_labflow', null);
        const previous = await trx('training_requirements').where({ document_id: c.documentId }).first('document_id');
        const requirement = await requirementInForce(trx, c, version.training_requirement);
        const empty = { impact: null, assign: [], supersede: [], cancel: [] };
        if (!requirement) return empty;
        const impact: TrainingImpact =
          version.training_impact ?? (!previous || requirement.retrain_on_revision ? 'retrain' : 'no_retraining');
        if (!version.training_impact) await trx('document_versions').where({ id: c.versionId }).update({ training_impact: impact });
        const open = trx('training_assignments').where({ document_id: c.documentId, state: 'assigned' }).where('version', '<', c.version);
        if (impact === 'retire') {
          await trx('training_requirements').where({ document_id: c.documentId }).update({ active: false, updated_at: trx.fn.now(), updated_by: SYSTEM });
          const cancel: string[] = await trx('training_assignments').where({ document_id: c.documentId, state: 'assigned' }).orderBy('workflow_id').pluck('workflow_id');
          await audit(trx, c.documentNumber, 'training.requirement_retired', { version: c.version, cancelling: cancel.length });
          return { ...empty, impact, cancel };
        }
        if (!requirement.active) return { ...empty, impact };
        const supersede: string[] = await open.clone().orderBy('workflow_id').pluck('workflow_id');
        // Those trained on a version that still counts (no retraining since) need no new assignment.
        const baseline: number =
          impact === 'retrain'
            ? c.version
            : ((
                await trx('document_versions')
                  .where({ document_id: c.documentId })
                  .where('version', '<', c.version)
                  .whereNotNull('effective_at')
                  .whereRaw(`training_impact is distinct from 'no_retraining'`)
                  .max('version as v')
                  .first()
              )?.v ?? 1);
        const assign: { userId: string; username: string }[] = (
          await trx.raw(
            `select u.id as "userId", u.username from users u
              where u.active and u.roles && ?::text[]
                and not exists (select 1 from training_assignments a
                                 where a.user_id = u.id and a.document_id = ?
                                   and (a.version = ? or (a.state = 'completed' and a.version >= ?)))
              order by u.username`,
            [pgArray(requirement.roles), c.documentId, c.version, baseline],
          )
        ).rows;
        await audit(trx, c.documentNumber, 'training.campaign_planned', {
          version: c.version,
          impact,
          roles: requirement.roles,
          assigning: assign.length,
          superseding: supersede.length,
        });
        return { impact, assign, supersede, cancel: [] as string[] };
      });
    },

    /**
     * Opens an assignment when Postgres bears it out: the version is effective, its requirement active, and the
     * person active in one of the roles it names. Opening it again changes nothing. Answers its due date, or why not.
     */
    async openTrainingAssignment(ref: TrainingRef, requestedBy: string) {
      return db.transaction(async (trx) => {
        const existing = await trx('training_assignments').where({ workflow_id: ref.workflowId }).first('due_at', 'state');
        const requirement = (await trx('training_requirements').where({ document_id: ref.documentId }).first()) as RequirementRow | undefined;
        if (existing && requirement) return { opened: true as const, dueAt: existing.due_at.toISOString(), reminderBefore: requirement.reminder_before };
        const version = await trx('document_versions').where({ id: ref.versionId, document_id: ref.documentId, version: ref.version }).first('state');
        const user = await trx('users').where({ id: ref.userId, username: ref.username }).first('active', 'roles');
        const why =
          !version || version.state !== 'effective'
            ? 'the version is not effective'
            : !requirement?.active
              ? 'the document has no active training requirement'
              : !user?.active
                ? 'the person is not active'
                : !(user.roles as Role[]).some((r) => requirement.roles.includes(r))
                  ? 'the person holds none of the roles the requirement names'
                  : null;
        if (why || !requirement) {
          await audit(trx, ref.workflowId, 'training.assignment_refused', { document: ref.documentNumber, version: ref.version, why, requestedBy });
          return { opened: false as const, why: why ?? 'no requirement' };
        }
        const dueAt = new Date(Date.now() + durationMs(requirement.due)).toISOString();
        await trx('training_assignments').insert({
          workflow_id: ref.workflowId,
          user_id: ref.userId,
          document_id: ref.documentId,
          document_number: ref.documentNumber,
          version: ref.version,
          version_id: ref.versionId,
          due_at: dueAt,
          requested_by: requestedBy,
        });
        const assignee: AssigneeRef = { kind: 'user', userId: ref.userId, username: ref.username };
        await openTask(trx, {
          taskKey: taskKey(ref),
          workflowId: ref.workflowId,
          entityType: 'training',
          entityId: ref.workflowId,
          kind: 'training.read',
          title: `Read and sign ${label(ref)} "${ref.title}"`,
          assignee,
          dueAt,
        });
        await audit(trx, ref.workflowId, 'training.assigned', { document: ref.documentNumber, version: ref.version, dueAt, requestedBy });
        const outboxIds = await notify(trx, [assignee], {
          kind: 'training.assigned',
          title: `Training: read ${label(ref)}`,
          body: `${label(ref)} "${ref.title}" is effective. Read it and sign it as read and understood by ${dueAt}.`,
          link: link(ref),
        });
        return { opened: true as const, dueAt, reminderBefore: requirement.reminder_before, outboxIds };
      });
    },

    async remindTrainingAssignment(ref: TrainingRef, p: { kind: 'reminder' | 'escalation'; dueAt: string }) {
      return db.transaction(async (trx) => {
        const open = await trx('training_assignments')
          .where({ workflow_id: ref.workflowId, state: 'assigned' })
          .update(p.kind === 'reminder' ? { reminded_at: trx.fn.now() } : { escalated_at: trx.fn.now() })
          .returning('id');
        if (!open.length) return [];
        const me: AssigneeRef = { kind: 'user', userId: ref.userId, username: ref.username };
        await audit(trx, ref.workflowId, p.kind === 'reminder' ? 'training.reminder' : 'training.overdue', { dueAt: p.dueAt });
        if (p.kind === 'reminder') {
          return notify(trx, [me], {
            kind: 'training.reminder',
            title: `Reminder: sign ${label(ref)} by ${p.dueAt}`,
            body: `Your read-and-understood signature on ${label(ref)} "${ref.title}" is due at ${p.dueAt}.`,
            link: link(ref),
          });
        }
        return notify(trx, [me, TRAINING_ESCALATION], {
          kind: 'training.overdue',
          title: `Overdue training: ${ref.username} on ${label(ref)}`,
          body: `${ref.username}'s training on ${label(ref)} "${ref.title}" was due at ${p.dueAt} and is not signed.`,
          link: link(ref),
        });
      });
    },

    /**
     * Records the person's own read-and-understood signature. The grant must be theirs (no delegation), bound to a
     * password check with that meaning and the hash of the version's text.
     */
    async recordTrainingSignOff(ref: TrainingRef, p: { actor: Actor; grant: string; signature: SignatureInput }) {
      return checks.recording(refOf(ref), TRAINING_SIGN_OFF, async (trx) => {
        const actor = await checks.granted(
          trx,
          ref,
          {
            grantId: p.grant,
            action: TRAINING_SIGN_OFF,
            actor: p.actor,
            args: signOffGrantedArgs(p),
            signature: { meaning: p.signature.meaning, contentHash: p.signature.contentHash },
          },
          (user) => user.id === ref.userId,
        );
        const version = await trx('document_versions').where({ id: ref.versionId }).first('content_hash');
        if (p.signature.meaning !== READ_AND_UNDERSTOOD || version?.content_hash !== p.signature.contentHash) {
          throw ApplicationFailure.create({
            type: FailureType.StaleContentHash,
            message: `the signature must mean ${READ_AND_UNDERSTOOD} and sign the text of ${label(ref)}`,
            nonRetryable: true,
          });
        }
        const signatureId = await recordSignature(trx, {
          idempotencyKey: `${ref.workflowId}:${actor.userId}`,
          entityType: 'training',
          entityId: ref.workflowId,
          documentVersionId: ref.versionId,
          workflowId: ref.workflowId,
          round: 1,
          stageIndex: 0,
          stageName: 'read and understood',
          actor,
          signature: p.signature,
        });
        const [done] = await trx('training_assignments')
          .where({ workflow_id: ref.workflowId, state: 'assigned' })
          .update({ state: 'completed', signature_id: signatureId, closed_at: trx.fn.now() })
          .returning('closed_at');
        if (!done) {
          throw ApplicationFailure.create({ type: FailureType.WrongStage, message: `${ref.username}'s training on ${label(ref)} is no longer open`, nonRetryable: true });
        }
        await closeTask(trx, taskKey(ref), 'done', actor.userId);
        await audit(
          trx,
          ref.workflowId,
          'training.completed',
          {
            document: ref.documentNumber,
            version: ref.version,
            grant: p.grant,
            signature: { id: signatureId, printedName: actor.printedName, meaning: p.signature.meaning, signedAt: p.signature.signedAt, contentHash: p.signature.contentHash },
          },
          actor,
        );
        return { completedAt: (done.closed_at as Date).toISOString(), signer: { username: actor.username, printedName: actor.printedName } };
      });
    },

    /**
     * Ends an open assignment for a reason Postgres bears out: a newer version is effective, the person holds none
     * of the requirement's roles, is inactive, or the requirement was retired. A reason it does not bear out is a
     * refused (forged) signal. Answers whether it ended now.
     */
    async endTrainingAssignment(ref: TrainingRef, reason: AssignmentEnding) {
      return checks.recording(refOf(ref), `training.${reason}_signal`, async (trx) => {
        const row = await trx('training_assignments').where({ workflow_id: ref.workflowId }).forNoKeyUpdate().first('state');
        if (!row) throw new Refusal('not_from_labflow', null);
        if (row.state !== 'assigned') return { ended: false };
        const requirement = (await trx('training_requirements').where({ document_id: ref.documentId }).first()) as RequirementRow | undefined;
        const user = await trx('users').where({ id: ref.userId }).first('active', 'roles');
        const borneOut =
          reason === 'superseded'
            ? !!(await trx('document_versions').where({ document_id: ref.documentId }).where('version', '>', ref.version).whereNotNull('effective_at').first('id'))
            : reason === 'role_removed'
              ? !requirement || !(user.roles as Role[]).some((r) => requirement.roles.includes(r))
              : reason === 'user_deactivated'
                ? !user.active
                : !requirement?.active;
        if (!borneOut) throw new Refusal('not_from_labflow', null);
        await trx('training_assignments')
          .where({ workflow_id: ref.workflowId })
          .update({ state: reason === 'superseded' ? 'superseded' : 'cancelled', ended_because: reason, closed_at: trx.fn.now() });
        await closeTask(trx, taskKey(ref), 'cancelled');
        await audit(trx, ref.workflowId, reason === 'superseded' ? 'training.superseded' : 'training.cancelled', {
          document: ref.documentNumber,
          version: ref.version,
          reason,
        });
        return { ended: true };
      });
    },
  };
}

export type TrainingActivities = ReturnType<typeof trainingActivities>;
