import { ApplicationFailure } from '@temporalio/activity';
import type { Knex } from 'knex';
import type { DecisionKind, SignatureInput, VersionState } from '../common/document-approval';
import type { AssigneeRef } from '../common/assignees';
import { FailureType } from '../common/failures';
import type { Actor } from '../common/roles';
import { assigneeKey } from '../common/assignees';
import { grantedArgs, type DocumentAction } from '../common/grants';
import { appendAudit } from '../db/audit';
import { diff, type FieldChange } from '../db/field-changes';
import type { GrantedUser } from '../db/grants';
import { queueNotifications, type NotificationMessage } from '../db/notifications';
import { resolveRecipients } from '../db/recipients';
import { recordSignature, voidSignatures } from '../db/signatures';
import { closeTask, closeTasksByPrefix, handOverTasks, openTask, userIsInactive } from '../db/tasks';
import type { ActivityDeps } from './deps';
import { activityKey } from './keys';
import { documentReviewActivity } from '../db/gate';
import { grantChecks, Refusal, type RecordRef } from './lib/grant-checks';
import { gateInTransaction } from './training';

/** Identifies the version a run is about; passed to every activity so each can write its own trail. */
export interface DocRef {
  workflowId: string;
  documentId: string;
  documentNumber: string;
  versionId: string;
  version: number;
  title: string;
  authorId: string;
}

const SYSTEM_ACTOR = 'system:document-approval';

const isDocumentControl = (user: GrantedUser) => user.roles.includes('document_control');

/** Who may do each action, judged on the user as Postgres knows them now (the grant was written a moment ago). */
const MAY: Record<Exclude<DocumentAction, 'document.decide'>, (user: GrantedUser, doc: DocRef) => boolean> = {
  'document.submit': (user, doc) => user.id === doc.authorId || isDocumentControl(user),
  'document.withdraw': (user, doc) => user.id === doc.authorId || isDocumentControl(user),
  'document.reassign': isDocumentControl,
  'document.extend_due': isDocumentControl,
  'document.upload_revision': (user, doc) => user.id === doc.authorId,
  'document.obsolete': isDocumentControl,
  'document.complete_periodic_review': isDocumentControl,
};
const DOCUMENT_CONTROL: AssigneeRef = { kind: 'role', role: 'document_control' };

export const stageTaskPrefix = (doc: DocRef, round: number, stageIndex: number) => `${doc.workflowId}:r${round}:s${stageIndex}:`;
const label = (doc: DocRef) => `${doc.documentNumber} v${doc.version}`;

export function documentActivities({ db, mailer, publicUrl, mailDomain }: ActivityDeps) {
  const link = (doc: DocRef) => `${publicUrl}/api/v1/documents/${doc.documentNumber}/versions/${doc.version}`;

  async function notify(trx: Knex.Transaction, to: AssigneeRef[], message: Omit<NotificationMessage, 'idempotencyKey'>, keySuffix = '') {
    const recipients = await resolveRecipients(trx, to);
    return queueNotifications(trx, recipients, { ...message, idempotencyKey: activityKey(keySuffix) }, mailDomain);
  }

  function audit(trx: Knex.Transaction, doc: DocRef, action: string, details: Record<string, unknown>, actor?: Actor, keySuffix = '') {
    return appendAudit(trx, {
      actorId: actor?.userId ?? null,
      actor: actor?.username ?? SYSTEM_ACTOR,
      action,
      entityType: 'document',
      entityId: doc.documentNumber,
      details: { version: doc.version, workflowId: doc.workflowId, ...details },
      idempotencyKey: activityKey(keySuffix),
    });
  }

  const refs = (doc: DocRef): RecordRef => ({
    workflowId: doc.workflowId,
    entityType: 'document',
    entityId: doc.documentNumber,
    label: label(doc),
    link: link(doc),
    details: { version: doc.version },
  });
  const checks = grantChecks({ db, mailer, mailDomain });
  const requireGate = gateInTransaction({ db });
  const granted = (trx: Knex.Transaction, doc: DocRef, claim: Parameters<typeof checks.granted>[2], may: (user: GrantedUser) => boolean) =>
    checks.granted(trx, doc, claim, may);
  const recording = <T>(doc: DocRef, action: DocumentAction | 'document.superseded' | 'document.user_deactivated_signal', work: (trx: Knex.Transaction) => Promise<T>) =>
    checks.recording(refs(doc), action, work);

  /**
   * The proof a `superseded` signal carries is the record itself: the superseding run marks this version superseded
   * in the transaction that makes its own version effective, so a signal Postgres does not bear out is forged.
   */
  async function requireSupersession(trx: Knex.Transaction, doc: DocRef, by: { byWorkflowId: string; byVersion: number }) {
    const self = await trx('document_versions').where({ id: doc.versionId }).first('state');
    const successor = await trx('document_versions')
      .where({ document_id: doc.documentId, version: by.byVersion, workflow_id: by.byWorkflowId })
      .whereIn('state', ['effective', 'superseded', 'obsolete'])
      .first('id');
    if (self?.state !== 'superseded' || !successor) throw new Refusal('not_superseded', null);
  }

  /** Updates the version's record and answers each field it changed with its old and new value, for the trail. */
  async function setVersion(trx: Knex.Transaction, doc: DocRef, fields: Record<string, unknown>): Promise<FieldChange[]> {
    const columns = Object.keys(fields);
    const before = await trx('document_versions').where({ id: doc.versionId }).forNoKeyUpdate().first(columns);
    const [after] = await trx('document_versions')
      .where({ id: doc.versionId })
      .update({ ...fields, updated_at: trx.fn.now() })
      .returning(columns);
    return diff(before, after, { fields: columns });
  }

  /**
   * One person signs at most one stage per round: refused, with nothing written, when the signer closed a review
   * task of another stage of this round (the run's validator refuses it first; this holds whatever the run was sent).
   */
  async function requireOneStagePerRound(trx: Knex.Transaction, doc: DocRef, round: number, stageIndex: number, signer: Actor) {
    const startsWith = (prefix: string) => `${prefix.replace(/[\\%_]/g, '\\$&')}%`;
    const elsewhere = await trx('tasks')
      .where({ workflow_id: doc.workflowId, state: 'done', closed_by: signer.userId })
      .andWhere('task_key', 'like', startsWith(`${doc.workflowId}:r${round}:s`))
      .andWhereNot('task_key', 'like', startsWith(stageTaskPrefix(doc, round, stageIndex)))
      .first('task_key');
    if (elsewhere) {
      throw ApplicationFailure.create({
        type: FailureType.DuplicateDecision,
        message: `${signer.username} already decided another stage of round ${round} of ${label(doc)}; one person signs at most one stage per round`,
        nonRetryable: true,
      });
    }
  }

  return {
    async openReviewStage(p: {
      doc: DocRef;
      round: number;
      stageIndex: number;
      stageName: string;
      assignees: AssigneeRef[];
      dueAt: string;
      /** With the first stage of a run: the submission's grant and what it binds. */
      submission?: { grant?: string; submittedBy: string; args: Parameters<typeof grantedArgs.submit>[0] };
    }) {
      return recording(p.doc, 'document.submit', async (trx) => {
        const { submission } = p;
        if (submission) {
          const submitter = { userId: submission.submittedBy } as Actor;
          const claim = {
            grantId: submission.grant,
            action: 'document.submit' as const,
            actor: submitter,
            args: grantedArgs.submit(submission.args),
          };
          await granted(trx, p.doc, claim, (user) => MAY['document.submit'](user, p.doc));
        }
        const changes = await setVersion(trx, p.doc, {
          state: 'in_review',
          workflow_id: p.doc.workflowId,
          round: p.round,
          stage_name: p.stageName,
          assignees: p.assignees.map(assigneeKey),
          due_at: p.dueAt,
          submitted_at: trx.raw('coalesce(submitted_at, now())'),
        });
        for (const assignee of p.assignees) {
          await openTask(trx, {
            taskKey: stageTaskPrefix(p.doc, p.round, p.stageIndex) + assigneeKey(assignee),
            workflowId: p.doc.workflowId,
            entityType: 'document',
            entityId: p.doc.documentNumber,
            kind: 'document.review',
            title: `Review ${label(p.doc)} "${p.doc.title}" (${p.stageName})`,
            assignee,
            dueAt: p.dueAt,
          });
        }
        await audit(trx, p.doc, 'document.stage_opened', {
          round: p.round,
          stage: p.stageName,
          assignees: p.assignees.map(assigneeKey),
          dueAt: p.dueAt,
          changes,
        });
        return notify(trx, p.assignees, {
          kind: 'document.review_requested',
          title: `Review requested: ${label(p.doc)} ${p.doc.title}`,
          body: `${label(p.doc)} "${p.doc.title}" waits for your ${p.stageName} decision by ${p.dueAt}.`,
          link: link(p.doc),
        });
      });
    },

    async recordDecision(p: {
      doc: DocRef;
      round: number;
      stageIndex: number;
      stageName: string;
      slotKey: string;
      actor: Actor;
      grant: string;
      decision: DecisionKind;
      comment?: string;
      signature?: SignatureInput;
    }) {
      return recording(p.doc, 'document.decide', async (trx) => {
        const holdsSlot = (user: GrantedUser) =>
          p.slotKey.startsWith('role:')
            ? user.roles.includes(p.slotKey.slice('role:'.length) as Actor['roles'][number])
            : p.slotKey === `user:${user.username}`;
        const actor = await granted(
          trx,
          p.doc,
          { grantId: p.grant, action: 'document.decide', actor: p.actor, args: grantedArgs.decide(p), signature: p.signature },
          (user) => user.id !== p.doc.authorId && holdsSlot(user),
        );
        // A reviewer of a type whose review is governed by controlled documents must be trained on them.
        const { doc_type: docType } = await trx('documents').where({ id: p.doc.documentId }).first('doc_type');
        await requireGate(trx, actor, { activity: documentReviewActivity(docType) }, { entityType: 'document', entityId: p.doc.documentNumber });
        await requireOneStagePerRound(trx, p.doc, p.round, p.stageIndex, actor);
        let signatureId: string | null = null;
        if (p.signature) {
          signatureId = await recordSignature(trx, {
            idempotencyKey: `${p.doc.workflowId}:r${p.round}:s${p.stageIndex}:${actor.userId}`,
            entityType: 'document',
            entityId: p.doc.documentNumber,
            documentVersionId: p.doc.versionId,
            workflowId: p.doc.workflowId,
            round: p.round,
            stageIndex: p.stageIndex,
            stageName: p.stageName,
            actor,
            signature: p.signature,
          });
        }
        await closeTask(trx, stageTaskPrefix(p.doc, p.round, p.stageIndex) + p.slotKey, 'done', actor.userId);
        await audit(
          trx,
          p.doc,
          `document.decision.${p.decision}`,
          {
            round: p.round,
            stage: p.stageName,
            comment: p.comment ?? null,
            // Links the record to the grant it consumed, which holds when the password was checked.
            grant: p.grant,
            signature: p.signature
              ? {
                  id: signatureId,
                  printedName: actor.printedName,
                  meaning: p.signature.meaning,
                  signedAt: p.signature.signedAt,
                  contentHash: p.signature.contentHash,
                }
              : null,
          },
          actor,
        );
        return { signatureId, signer: { username: actor.username, printedName: actor.printedName } };
      });
    },

    /**
     * Consumes the grant of a request the run carries out later in its own order (withdraw, obsolete, a revision)
     * and records that it was accepted; answers the actor as Postgres knows them, whom the later record names.
     */
    async acceptRequest(p: {
      doc: DocRef;
      action: 'document.withdraw' | 'document.obsolete' | 'document.upload_revision';
      actor: Actor;
      grant: string;
      args: { reason: string } | { contentHash: string };
    }): Promise<Actor> {
      return recording(p.doc, p.action, async (trx) => {
        const args =
          p.action === 'document.upload_revision'
            ? grantedArgs.uploadRevision(p.args as { contentHash: string })
            : grantedArgs.withdraw(p.args as { reason: string });
        // A deactivated author's revisions rest with document control (handOverRevisionsOfDeactivated).
        const authorGone = p.action === 'document.upload_revision' && (await userIsInactive(trx, p.doc.authorId));
        const actor = await granted(
          trx,
          p.doc,
          { grantId: p.grant, action: p.action, actor: p.actor, args },
          (user) => MAY[p.action](user, p.doc) || (authorGone && isDocumentControl(user)),
        );
        await audit(trx, p.doc, 'document.request_accepted', { request: p.action, ...args }, actor);
        return actor;
      });
    },

    async closeReviewStage(p: { doc: DocRef; round: number; stageIndex: number; stageName: string; outcome: string }) {
      await db.transaction(async (trx) => {
        const cancelled = await closeTasksByPrefix(trx, stageTaskPrefix(p.doc, p.round, p.stageIndex), 'cancelled');
        await audit(trx, p.doc, 'document.stage_closed', {
          round: p.round,
          stage: p.stageName,
          outcome: p.outcome,
          cancelledTasks: cancelled,
        });
      });
    },

    async remindStage(p: {
      doc: DocRef;
      round: number;
      stageName: string;
      pending: AssigneeRef[];
      dueAt: string;
      kind: 'reminder' | 'escalation';
    }) {
      return db.transaction(async (trx) => {
        await audit(trx, p.doc, p.kind === 'reminder' ? 'document.stage_reminder' : 'document.stage_overdue', {
          round: p.round,
          stage: p.stageName,
          pending: p.pending.map(assigneeKey),
          dueAt: p.dueAt,
        });
        if (p.kind === 'reminder') {
          return notify(trx, p.pending, {
            kind: 'document.review_reminder',
            title: `Reminder: ${label(p.doc)} review due ${p.dueAt}`,
            body: `Your ${p.stageName} decision on ${label(p.doc)} "${p.doc.title}" is due at ${p.dueAt}.`,
            link: link(p.doc),
          });
        }
        return notify(trx, [DOCUMENT_CONTROL, ...p.pending], {
          kind: 'document.review_overdue',
          title: `Overdue: ${label(p.doc)} ${p.stageName}`,
          body: `The ${p.stageName} stage of ${label(p.doc)} "${p.doc.title}" was due at ${p.dueAt}; still waiting for ${p.pending.map(assigneeKey).join(', ')}.`,
          link: link(p.doc),
        });
      });
    },

    async requestRevision(p: { doc: DocRef; round: number; by: { username: string; printedName: string }; comment: string }) {
      return db.transaction(async (trx) => {
        const changes = await setVersion(trx, p.doc, { state: 'changes_requested', stage_name: null, assignees: [], due_at: null });
        // A deactivated author's revisions rest with document control.
        const author: AssigneeRef = (await userIsInactive(trx, p.doc.authorId))
          ? DOCUMENT_CONTROL
          : { kind: 'user', userId: p.doc.authorId, username: '' };
        await openTask(trx, {
          taskKey: `${p.doc.workflowId}:r${p.round}:revise`,
          workflowId: p.doc.workflowId,
          entityType: 'document',
          entityId: p.doc.documentNumber,
          kind: 'document.revise',
          title: `Revise ${label(p.doc)} "${p.doc.title}"`,
          assignee: author,
        });
        await audit(trx, p.doc, 'document.changes_requested', { round: p.round, by: p.by.username, comment: p.comment, changes });
        return notify(trx, [author], {
          kind: 'document.changes_requested',
          title: `Changes requested: ${label(p.doc)}`,
          body: `${p.by.printedName} requested changes to ${label(p.doc)} "${p.doc.title}": ${p.comment}`,
          link: link(p.doc),
        });
      });
    },

    async applyRevision(p: { doc: DocRef; round: number; contentHash: string; actor: Actor }) {
      await db.transaction(async (trx) => {
        const content = await trx('document_contents').where({ hash: p.contentHash }).first('hash');
        if (!content) {
          throw ApplicationFailure.create({
            type: FailureType.NotFound,
            message: `no content with hash ${p.contentHash}`,
            nonRetryable: true,
          });
        }
        const before = await trx('document_versions').where({ id: p.doc.versionId }).first('content_hash');
        const changes = await setVersion(trx, p.doc, { content_hash: p.contentHash, round: p.round });
        const voided = await voidSignatures(
          trx,
          { entityType: 'document', entityId: p.doc.documentNumber, workflowId: p.doc.workflowId, beforeRound: p.round },
          `content revised for round ${p.round}`,
        );
        const reviseTask = `${p.doc.workflowId}:r${p.round - 1}:revise`;
        await closeTask(trx, reviseTask, 'done', p.actor.userId);
        await closeTasksByPrefix(trx, `${reviseTask}>`, 'done');
        await audit(
          trx,
          p.doc,
          'document.revised',
          { round: p.round, fromHash: before.content_hash, toHash: p.contentHash, voidedSignatures: voided, changes },
          p.actor,
        );
      });
    },

    async closeVersion(p: {
      doc: DocRef;
      state: Extract<VersionState, 'approved' | 'rejected' | 'withdrawn' | 'obsolete'>;
      by?: Actor;
      comment?: string;
    }) {
      return db.transaction(async (trx) => {
        const stamp = p.state === 'approved' ? { approved_at: trx.fn.now() } : { closed_at: trx.fn.now() };
        const changes = await setVersion(trx, p.doc, { state: p.state, stage_name: null, assignees: [], due_at: null, ...stamp });
        const cancelled = await closeTasksByPrefix(trx, `${p.doc.workflowId}:`, 'cancelled');
        await audit(
          trx,
          p.doc,
          `document.${p.state}`,
          { by: p.by?.username ?? null, comment: p.comment ?? null, cancelledTasks: cancelled, changes },
          p.by,
        );
        return notify(trx, [{ kind: 'user', userId: p.doc.authorId, username: '' }], {
          kind: `document.${p.state}`,
          title: `${label(p.doc)} ${p.state.replace('_', ' ')}`,
          body: `${label(p.doc)} "${p.doc.title}" is now ${p.state}${p.comment ? `: ${p.comment}` : '.'}`,
          link: link(p.doc),
        });
      });
    },

    /** Makes the version effective and, in the same transaction, supersedes the version that was effective. */
    async makeEffective(p: { doc: DocRef; nextReviewAt: string }) {
      return db.transaction(async (trx) => {
        await trx('documents').where({ id: p.doc.documentId }).forNoKeyUpdate().first('id');
        const previous = await trx('document_versions')
          .where({ document_id: p.doc.documentId, state: 'effective' })
          .whereNot({ id: p.doc.versionId })
          .first('id', 'version', 'workflow_id');
        if (previous) {
          const fields = ['state', 'closed_at', 'next_review_at'];
          const before = await trx('document_versions').where({ id: previous.id }).first(fields);
          const [after] = await trx('document_versions')
            .where({ id: previous.id })
            .update({ state: 'superseded', closed_at: trx.fn.now(), next_review_at: null, updated_at: trx.fn.now() })
            .returning(fields);
          await appendAudit(trx, {
            actor: SYSTEM_ACTOR,
            action: 'document.superseded',
            entityType: 'document',
            entityId: p.doc.documentNumber,
            details: { version: previous.version, supersededBy: p.doc.version, changes: diff(before, after, { fields }) },
            idempotencyKey: activityKey('superseded'),
          });
        }
        const changes = await setVersion(trx, p.doc, {
          state: 'effective',
          effective_at: trx.fn.now(),
          next_review_at: p.nextReviewAt,
          stage_name: null,
          assignees: [],
          due_at: null,
        });
        await audit(trx, p.doc, 'document.effective', { supersedes: previous?.version ?? null, nextReviewAt: p.nextReviewAt, changes });
        const outboxIds = await notify(trx, [{ kind: 'user', userId: p.doc.authorId, username: '' }, DOCUMENT_CONTROL], {
          kind: 'document.effective',
          title: `${label(p.doc)} is effective`,
          body: `${label(p.doc)} "${p.doc.title}" is effective${previous ? ` and supersedes v${previous.version}` : ''}.`,
          link: link(p.doc),
        });
        return { supersededWorkflowId: (previous?.workflow_id as string | null) ?? null, outboxIds };
      });
    },

    /** Cancels whatever the run still has open in the inbox (it was superseded, or an operator cancelled it). */
    async closeOpenTasks(p: { doc: DocRef; reason: string; supersededBy?: { byWorkflowId: string; byVersion: number } }) {
      await recording(p.doc, 'document.superseded', async (trx) => {
        if (p.supersededBy) await requireSupersession(trx, p.doc, p.supersededBy);
        const cancelled = await closeTasksByPrefix(trx, `${p.doc.workflowId}:`, 'cancelled');
        if (cancelled) await audit(trx, p.doc, 'document.tasks_cancelled', { reason: p.reason, cancelledTasks: cancelled });
      });
    },

    async openPeriodicReview(p: { doc: DocRef; cycle: number; dueAt: string }) {
      return db.transaction(async (trx) => {
        await openTask(trx, {
          taskKey: `${p.doc.workflowId}:review${p.cycle}`,
          workflowId: p.doc.workflowId,
          entityType: 'document',
          entityId: p.doc.documentNumber,
          kind: 'document.periodic_review',
          title: `Periodic review of ${label(p.doc)} "${p.doc.title}"`,
          assignee: DOCUMENT_CONTROL,
          dueAt: p.dueAt,
        });
        await audit(trx, p.doc, 'document.periodic_review_due', { cycle: p.cycle });
        return notify(trx, [DOCUMENT_CONTROL, { kind: 'user', userId: p.doc.authorId, username: '' }], {
          kind: 'document.periodic_review_due',
          title: `Periodic review due: ${label(p.doc)}`,
          body: `${label(p.doc)} "${p.doc.title}" is due for its periodic review.`,
          link: link(p.doc),
        });
      });
    },

    async completePeriodicReview(p: { doc: DocRef; cycle: number; actor: Actor; grant: string; comment: string; nextReviewAt: string }) {
      await recording(p.doc, 'document.complete_periodic_review', async (trx) => {
        const actor = await granted(
          trx,
          p.doc,
          { grantId: p.grant, action: 'document.complete_periodic_review', actor: p.actor, args: grantedArgs.completePeriodicReview(p) },
          (user) => MAY['document.complete_periodic_review'](user, p.doc),
        );
        await closeTask(trx, `${p.doc.workflowId}:review${p.cycle}`, 'done', actor.userId);
        const changes = await setVersion(trx, p.doc, { next_review_at: p.nextReviewAt });
        await audit(
          trx,
          p.doc,
          'document.periodic_review_completed',
          { cycle: p.cycle, comment: p.comment, nextReviewAt: p.nextReviewAt, changes },
          actor,
        );
      });
    },

    /**
     * A deactivated user's undecided review slots go to `to` (the run chose: document control, or QA where document
     * control already holds a slot of that stage). Believed only when Postgres shows the user inactive; the open
     * review task moves with the slot of the stage under way.
     */
    async handOverSlotsOfDeactivated(p: {
      doc: DocRef;
      round: number;
      user: { userId: string; username: string };
      moves: { stageIndex: number; stageName: string; to: AssigneeRef }[];
      current: number | null;
      dueAt: string | null;
    }) {
      return recording(p.doc, 'document.user_deactivated_signal', async (trx) => {
        if (!(await userIsInactive(trx, p.user.userId))) throw new Refusal('not_from_labflow', p.user.userId.slice(0, 64));
        const from = `user:${p.user.username}`;
        const current = p.moves.find((m) => m.stageIndex === p.current);
        if (current) {
          const prefix = stageTaskPrefix(p.doc, p.round, current.stageIndex);
          await handOverTasks(trx, {
            workflowId: p.doc.workflowId,
            userId: p.user.userId,
            to: current.to,
            keyOf: (key) => (key === prefix + from ? prefix + assigneeKey(current.to) : `${key}>${assigneeKey(current.to)}`),
          });
          const assignees: string[] = (await trx('document_versions').where({ id: p.doc.versionId }).first('assignees')).assignees;
          await setVersion(trx, p.doc, { assignees: [...new Set(assignees.map((a) => (a === from ? assigneeKey(current.to) : a)))] });
        }
        for (const m of p.moves) {
          await audit(
            trx,
            p.doc,
            'document.stage_reassigned',
            { stage: m.stageName, from, to: assigneeKey(m.to), reason: 'user deactivated' },
            undefined,
            `handover-${m.stageIndex}`,
          );
        }
        if (!current) return [];
        return notify(trx, [current.to], {
          kind: 'document.review_requested',
          title: `Review handed over: ${label(p.doc)} ${p.doc.title}`,
          body: `${p.user.username} was deactivated; their review of ${label(p.doc)} "${p.doc.title}" (${current.stageName}) now rests with you${p.dueAt ? `, due ${p.dueAt}` : ''}.`,
          link: link(p.doc),
        });
      });
    },

    /**
     * A deactivated author's part in the run goes to document control: the open revision task (when the version
     * was returned for revision), and every later revision, which document control may then upload. Believed
     * only when Postgres shows the user inactive and as this version's author.
     */
    async handOverRevisionsOfDeactivated(p: { doc: DocRef; round: number; user: { userId: string; username: string } }) {
      return recording(p.doc, 'document.user_deactivated_signal', async (trx) => {
        const claimed = p.user.userId.slice(0, 64);
        if (p.user.userId !== p.doc.authorId || !(await userIsInactive(trx, p.user.userId))) throw new Refusal('not_from_labflow', claimed);
        const tasks = await handOverTasks(trx, {
          workflowId: p.doc.workflowId,
          userId: p.user.userId,
          to: DOCUMENT_CONTROL,
          keyOf: (key) => `${key}>${assigneeKey(DOCUMENT_CONTROL)}`,
        });
        const from = `user:${p.user.username}`;
        await audit(trx, p.doc, 'document.revision_reassigned', {
          round: p.round,
          from,
          to: assigneeKey(DOCUMENT_CONTROL),
          tasks,
          reason: 'user deactivated',
        });
        if (!tasks.length) return [];
        return notify(trx, [DOCUMENT_CONTROL], {
          kind: 'document.changes_requested',
          title: `Revision handed over: ${label(p.doc)} ${p.doc.title}`,
          body: `${p.user.username}, the author of ${label(p.doc)} "${p.doc.title}", was deactivated; the requested revision now rests with document control (upload it, or withdraw the version).`,
          link: link(p.doc),
        });
      });
    },

    async reassignStage(p: {
      doc: DocRef;
      round: number;
      stageIndex: number;
      stageName: string;
      from: AssigneeRef;
      to: AssigneeRef;
      dueAt: string;
      actor: Actor;
      grant: string;
      reason: string;
    }) {
      return recording(p.doc, 'document.reassign', async (trx) => {
        const args = grantedArgs.reassign({ from: assigneeKey(p.from), to: assigneeKey(p.to), reason: p.reason });
        const actor = await granted(trx, p.doc, { grantId: p.grant, action: 'document.reassign', actor: p.actor, args }, (user) =>
          MAY['document.reassign'](user, p.doc),
        );
        const prefix = stageTaskPrefix(p.doc, p.round, p.stageIndex);
        await closeTask(trx, prefix + assigneeKey(p.from), 'reassigned', actor.userId);
        await openTask(trx, {
          taskKey: prefix + assigneeKey(p.to),
          workflowId: p.doc.workflowId,
          entityType: 'document',
          entityId: p.doc.documentNumber,
          kind: 'document.review',
          title: `Review ${label(p.doc)} "${p.doc.title}" (${p.stageName})`,
          assignee: p.to,
          dueAt: p.dueAt,
        });
        const assignees: string[] = (await trx('document_versions').where({ id: p.doc.versionId }).first('assignees')).assignees;
        const changes = await setVersion(trx, p.doc, {
          assignees: assignees.map((a) => (a === assigneeKey(p.from) ? assigneeKey(p.to) : a)),
        });
        await audit(
          trx,
          p.doc,
          'document.stage_reassigned',
          { stage: p.stageName, from: assigneeKey(p.from), to: assigneeKey(p.to), reason: p.reason, changes },
          actor,
        );
        return notify(trx, [p.to], {
          kind: 'document.review_requested',
          title: `Review requested: ${label(p.doc)} ${p.doc.title}`,
          body: `${label(p.doc)} "${p.doc.title}" was reassigned to you for ${p.stageName}; due ${p.dueAt}.`,
          link: link(p.doc),
        });
      });
    },

    async extendStageDue(p: {
      doc: DocRef;
      round: number;
      stageIndex: number;
      stageName: string;
      fromDueAt: string;
      dueAt: string;
      actor: Actor;
      grant: string;
      reason: string;
    }) {
      await recording(p.doc, 'document.extend_due', async (trx) => {
        const args = grantedArgs.extendDue({ dueAt: p.dueAt, reason: p.reason });
        const actor = await granted(trx, p.doc, { grantId: p.grant, action: 'document.extend_due', actor: p.actor, args }, (user) =>
          MAY['document.extend_due'](user, p.doc),
        );
        await trx('tasks')
          .where('state', 'open')
          .andWhere('task_key', 'like', `${stageTaskPrefix(p.doc, p.round, p.stageIndex)}%`)
          .update({ due_at: p.dueAt });
        const changes = await setVersion(trx, p.doc, { due_at: p.dueAt });
        await audit(
          trx,
          p.doc,
          'document.stage_extended',
          { stage: p.stageName, from: p.fromDueAt, to: p.dueAt, reason: p.reason, changes },
          actor,
        );
      });
    },
  };
}

export type DocumentActivities = ReturnType<typeof documentActivities>;
