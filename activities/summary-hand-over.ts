import type { Knex } from 'knex';
import type { DeactivatedUser } from '../common/deactivation';
import { appendAudit } from '../db/audit';
import { openTask, userIsInactive } from '../db/tasks';
import type { ActivityDeps } from './deps';
import { activityKey } from './keys';
import { grantChecks, Refusal } from './lib/grant-checks';
import { jobRef, reviewTaskPrefix } from './soap-summary';

/** The active clinicians of a patient's care team, as Postgres knows them now: who may review its summaries. */
async function careTeam(trx: Knex.Transaction, patientId: string): Promise<{ id: string; username: string }[]> {
  return trx('patient_clinicians as pc')
    .join('users as u', 'u.id', 'pc.user_id')
    .where({ 'pc.patient_id': patientId, 'u.active': true })
    .whereRaw(`'clinician' = any(u.roles)`)
    .orderBy('u.username')
    .select('u.id', 'u.username');
}

export function summaryHandOverActivities({ db, mailer, mailDomain }: ActivityDeps) {
  const checks = grantChecks({ db, mailer, mailDomain });

  /** Review tasks for the care team, while a summary of the job awaits review (held against a review recorded meanwhile). */
  async function openReviewTasks(trx: Knex.Transaction, workflowId: string, patientId: string, round: number) {
    const team = await careTeam(trx, patientId);
    const awaiting = await trx('summaries').where({ workflow_id: workflowId, status: 'ready' }).forNoKeyUpdate().first('id');
    if (!awaiting) return team.map((c) => `user:${c.username}`);
    for (const clinician of team) {
      await openTask(trx, {
        taskKey: `${reviewTaskPrefix(workflowId, round)}user:${clinician.username}`,
        workflowId,
        entityType: 'patient',
        entityId: patientId,
        kind: 'summary.review',
        title: `Review a notes summary (round ${round}): the clinician who requested it was deactivated`,
        assignee: { kind: 'user', userId: clinician.id, username: clinician.username },
      });
    }
    return team.map((c) => `user:${c.username}`);
  }

  return {
    /**
     * The deactivated requester's review of a summary goes to the patient's care team: any active clinician of
     * the team may review (as before), and each is given a review task while a summary awaits review. Believed only
     * when Postgres shows the user inactive and records them as the job's requester; a notice it does not bear out
     * is refused as a security event and changes nothing. Answers the care team, as assignee keys.
     */
    async handOverSummaryReviewOfDeactivated(args: {
      workflowId: string;
      round: number;
      user: DeactivatedUser;
      awaitingReview: boolean;
    }): Promise<{ reviewers: string[] }> {
      const job = await db('summary_jobs').where({ workflow_id: args.workflowId }).first('patient_id', 'requested_by');
      return checks.recording(jobRef(args.workflowId, job?.patient_id ?? null), 'soap.user_deactivated_signal', async (trx) => {
        const claimed = args.user.userId.slice(0, 64);
        if (!job || job.requested_by !== args.user.userId) throw new Refusal('not_from_labflow', claimed);
        if (!(await userIsInactive(trx, args.user.userId))) throw new Refusal('not_from_labflow', claimed);
        const reviewers = args.awaitingReview
          ? await openReviewTasks(trx, args.workflowId, job.patient_id, args.round)
          : (await careTeam(trx, job.patient_id)).map((c) => `user:${c.username}`);
        await appendAudit(trx, {
          actor: 'system:soap-summary',
          action: 'summary.review_handed_over',
          entityType: 'patient',
          entityId: job.patient_id,
          details: { workflowId: args.workflowId, round: args.round, from: `user:${args.user.username}`, to: reviewers, reason: 'user deactivated' },
          idempotencyKey: activityKey(),
        });
        return { reviewers };
      });
    },

    /** A later round of a handed-over job awaits review: the care team, as Postgres knows it now, gets its tasks. */
    async openHandedOverReviewTasks(args: { workflowId: string; round: number }): Promise<{ reviewers: string[] }> {
      return db.transaction(async (trx) => {
        const job = await trx('summary_jobs').where({ workflow_id: args.workflowId }).first('patient_id');
        if (!job) return { reviewers: [] };
        return { reviewers: await openReviewTasks(trx, args.workflowId, job.patient_id, args.round) };
      });
    },
  };
}
