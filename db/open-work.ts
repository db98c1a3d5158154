import { assigneeKey } from '../common/assignees';
import { SAMPLE_WORK_RECEIVER } from '../common/deactivation';
import { FINAL_SAMPLE_STATES } from '../common/sample-intake';
import { appendAudit } from './audit';
import { openCapasHeldBy } from './capa';
import type { Db } from './knex';
import { queueNotifications } from './notifications';
import { resolveRecipients } from './recipients';
import { handOverTasks } from './tasks';

/** The runs of each process that may hold something of a user's: told when the user is deactivated. */
export interface RunsToTell {
  capa: string[];
  document: string[];
  sample: string[];
  summary: string[];
  training: string[];
}

const OPEN_SUMMARY_STAGES = ['requested', 'generating', 'validating', 'ready'];

/**
 * Which runs to tell of a user's deactivation. A document's later review stages live only in its run, so every
 * version under review (or awaiting a revision) is told; each run hands over only what the user holds in it.
 */
export async function runsToTell(db: Db, user: { userId: string; username: string }): Promise<RunsToTell> {
  const [capa, document, sample, summary, training] = await Promise.all([
    openCapasHeldBy(db, user.userId, user.username),
    db('document_versions').whereIn('state', ['in_review', 'changes_requested']).whereNotNull('workflow_id').orderBy('workflow_id').pluck('workflow_id'),
    db('samples')
      .where({ submitter_id: user.userId })
      .whereNotIn('state', FINAL_SAMPLE_STATES)
      .whereNotNull('workflow_id')
      .orderBy('workflow_id')
      .pluck('workflow_id'),
    db('summary_jobs').where({ requested_by: user.userId }).whereIn('stage', OPEN_SUMMARY_STAGES).orderBy('workflow_id').pluck('workflow_id'),
    db('training_assignments').where({ user_id: user.userId, state: 'assigned' }).orderBy('workflow_id').pluck('workflow_id'),
  ]);
  return { capa, document, sample, summary, training };
}

/**
 * A deactivated user's open tasks in sample runs that have ended (a rejected specimen's recollection request): no
 * run is left to hand them over, so the deactivation does, one audit event per sample, and tells the lab
 * directors. Answers the notifications to deliver.
 */
export async function handOverEndedSampleTasks(
  db: Db,
  p: { user: { userId: string; username: string }; by: string; byId: string | null; mailDomain: string },
): Promise<{ tasks: string[]; outboxIds: string[] }> {
  return db.transaction(async (trx) => {
    const endedRuns: { workflow_id: string; accession: string }[] = await trx('tasks as t')
      .join('samples as s', 's.workflow_id', 't.workflow_id')
      .where({ 't.assignee_user_id': p.user.userId, 't.state': 'open', 't.entity_type': 'sample' })
      .whereIn('s.state', FINAL_SAMPLE_STATES)
      .distinct('t.workflow_id', 's.accession')
      .orderBy('t.workflow_id');
    const tasks: string[] = [];
    for (const run of endedRuns) {
      const moved = await handOverTasks(trx, {
        workflowId: run.workflow_id,
        userId: p.user.userId,
        to: SAMPLE_WORK_RECEIVER,
        keyOf: (key) => `${key}>${assigneeKey(SAMPLE_WORK_RECEIVER)}`,
      });
      if (!moved.length) continue;
      tasks.push(...moved);
      await appendAudit(trx, {
        actorId: p.byId,
        actor: p.by,
        action: 'sample.work_handed_over',
        entityType: 'sample',
        entityId: run.accession,
        details: { workflowId: run.workflow_id, from: `user:${p.user.username}`, to: assigneeKey(SAMPLE_WORK_RECEIVER), tasks: moved, reason: 'user deactivated' },
      });
    }
    if (!tasks.length) return { tasks, outboxIds: [] };
    const accessions = endedRuns.map((r) => r.accession);
    const outboxIds = await queueNotifications(
      trx,
      await resolveRecipients(trx, [SAMPLE_WORK_RECEIVER]),
      {
        idempotencyKey: `sample-hand-over:${p.user.userId}:${tasks[0]}:${tasks.length}`,
        kind: 'sample.work_handed_over',
        title: `Recollections handed over: ${accessions.length === 1 ? `specimen ${accessions[0]}` : `${accessions.length} specimens`}`,
        body:
          `${p.user.username} was deactivated. Their open recollection requests (specimens ${accessions.join(', ')}) now rest ` +
          'with the lab director, who arranges each recollection with another clinician.',
        link: '/api/v1/tasks',
      },
      p.mailDomain,
    );
    return { tasks, outboxIds };
  });
}
