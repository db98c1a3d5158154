import type { Knex } from 'knex';
import type { Actor } from '../common/roles';

/** Stages in which a summary job may still change; the others are final. */
export const OPEN_SUMMARY_STAGES = ['requested', 'generating', 'validating', 'ready'];

export interface SummaryJobRow {
  workflow_id: string;
  patient_id: string;
  stage: string;
  round: number;
  providers: string[];
  provider: string | null;
  requested_at: Date;
  finished_at: Date | null;
}

export function findSummaryJob(db: Knex, jobId: string): Promise<SummaryJobRow | undefined> {
  return db('summary_jobs').where({ workflow_id: jobId }).first();
}

/** The stage the job of these notes was recorded in, if there is one. */
export async function summaryJobStage(db: Knex, jobId: string): Promise<string | undefined> {
  return (await db('summary_jobs').where({ workflow_id: jobId }).first('stage'))?.stage;
}

/** The patient's jobs that may still change, but for `except`. */
export function openSummaryJobsOf(db: Knex, patientId: string, except?: string): Promise<string[]> {
  return db('summary_jobs')
    .where({ patient_id: patientId })
    .whereIn('stage', OPEN_SUMMARY_STAGES)
    .modify((q) => (except ? q.whereNot('workflow_id', except) : q))
    .pluck('workflow_id');
}

/** Every attempt of a job, in the order they started. */
export function summaryJobAttempts(db: Knex, jobId: string) {
  return db('summary_attempts')
    .where({ workflow_id: jobId })
    .orderBy('started_at')
    .select(
      'round',
      'provider',
      'model',
      'outcome',
      'error_detail',
      'latency_ms',
      'input_tokens',
      'output_tokens',
      'max_tokens',
      'started_at',
    );
}

/** The attempts of one round, in the order they started. */
export function summaryRoundAttempts(db: Knex, jobId: string, round: number) {
  return db('summary_attempts')
    .where({ workflow_id: jobId, round })
    .orderBy('started_at')
    .select('provider', 'model', 'outcome', 'latency_ms', 'input_tokens', 'output_tokens');
}

/** The summary of the job's latest round that has one, whole. */
export function latestSummary(db: Knex, jobId: string) {
  return db('summaries').where({ workflow_id: jobId }).orderBy('round', 'desc').first();
}

/** The summary of the job's latest round that has one: its ID, round and status. */
export function latestSummaryStatus(db: Knex, jobId: string): Promise<{ id: string; round: number; status: string } | undefined> {
  return db('summaries').where({ workflow_id: jobId }).orderBy('round', 'desc').first('id', 'round', 'status');
}

export function reviewerOf(db: Knex, userId: string): Promise<{ username: string; printed_name: string } | undefined> {
  return db('users').where({ id: userId }).first('username', 'printed_name');
}

/** The patient's summary jobs, newest first, each with the summary of its current round if there is one. */
export function listSummaryJobs(db: Knex, patientId: string, page: { limit: number; offset: number }) {
  return db('summary_jobs as j')
    .leftJoin('summaries as s', function () {
      this.on('s.workflow_id', 'j.workflow_id').andOn('s.round', 'j.round');
    })
    .where('j.patient_id', patientId)
    .orderBy('j.requested_at', 'desc')
    .limit(page.limit)
    .offset(page.offset)
    .select(
      'j.workflow_id',
      'j.stage',
      'j.provider',
      'j.round',
      'j.requested_at',
      'j.finished_at',
      's.id as summary_id',
      's.status as summary_status',
    );
}

/**
 * The texts a review brings (an edited summary, a comment), stored before the run is asked so it records their
 * IDs; `discardReviewTexts` removes them again when the run refuses the review.
 */
export async function storeReviewTexts(
  db: Knex,
  actor: Actor,
  summaryId: string,
  texts: { edit?: { text: string; contentHash: string }; comment?: string },
): Promise<{ editId?: string; commentId?: string }> {
  const stored: { editId?: string; commentId?: string } = {};
  if (texts.edit) {
    const [edit] = await db('summary_edits')
      .insert({ summary_id: summaryId, text: texts.edit.text, content_hash: texts.edit.contentHash, author_id: actor.userId })
      .returning('id');
    stored.editId = edit.id;
  }
  if (texts.comment) {
    const [comment] = await db('summary_review_comments')
      .insert({ summary_id: summaryId, text: texts.comment, author_id: actor.userId })
      .returning('id');
    stored.commentId = comment.id;
  }
  return stored;
}

export async function discardReviewTexts(db: Knex, stored: { editId?: string; commentId?: string }): Promise<void> {
  if (stored.editId) await db('summary_edits').where({ id: stored.editId }).delete();
  if (stored.commentId) await db('summary_review_comments').where({ id: stored.commentId }).delete();
}
