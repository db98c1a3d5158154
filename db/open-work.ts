import { FINAL_SAMPLE_STATES } from '../common/sample-intake';
import type { Db } from './knex';
import { openCapasHeldBy } from './capa';

/** The runs of each process that may hold something of a user's: told when the user is deactivated. */
export interface RunsToTell {
  capa: string[];
  document: string[];
  sample: string[];
  summary: string[];
}

const OPEN_SUMMARY_STAGES = ['requested', 'generating', 'validating', 'ready'];

/**
 * Which runs to tell of a user's deactivation. A document's later review stages live only in its run, so every
 * version under review (or awaiting a revision) is told; each run hands over only what the user holds in it.
 */
export async function runsToTell(db: Db, user: { userId: string; username: string }): Promise<RunsToTell> {
  const [capa, document, sample, summary] = await Promise.all([
    openCapasHeldBy(db, user.userId, user.username),
    db('document_versions').whereIn('state', ['in_review', 'changes_requested']).whereNotNull('workflow_id').orderBy('workflow_id').pluck('workflow_id'),
    db('samples')
      .where({ submitter_id: user.userId })
      .whereNotIn('state', FINAL_SAMPLE_STATES)
      .whereNotNull('workflow_id')
      .orderBy('workflow_id')
      .pluck('workflow_id'),
    db('summary_jobs').where({ requested_by: user.userId }).whereIn('stage', OPEN_SUMMARY_STAGES).orderBy('workflow_id').pluck('workflow_id'),
  ]);
  return { capa, document, sample, summary };
}
