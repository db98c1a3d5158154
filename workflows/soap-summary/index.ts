import { ApplicationFailure, allHandlersFinished, condition, setHandler, workflowInfo } from '@temporalio/workflow';
import {
  reviewSummaryUpdate,
  summaryStateQuery,
  supersedeSummarySignal,
  type SummaryInput,
  type SummaryState,
} from '../../common/soap-summary';
import { userDeactivatedSignal } from '../../common/deactivation';
import { SummaryCase } from './soap-summary-case';
import { summarizers } from './summarizers';
import { validateReview } from './validators';

/**
 * One summary of one patient's notes, as of the notes' hash in the workflow ID. Each summarizer is tried in the
 * configured order, each call its own activity with its own timeout and retry policy; the first complete answer
 * that passes validation becomes the summary, which a clinician then approves, edits (both signed) or rejects
 * (a new round). A change to the notes supersedes the run wherever it is.
 */
export async function soapSummaryWorkflow(input: SummaryInput): Promise<SummaryState> {
  const job = new SummaryCase(input, summarizers(input), workflowInfo().workflowId);

  setHandler(summaryStateQuery, () => job.state);
  setHandler(supersedeSummarySignal, (notice) => job.supersede(notice));
  setHandler(userDeactivatedSignal, (user) => job.handOverFrom({ userId: String(user?.userId ?? ''), username: String(user?.username ?? '') }));
  setHandler(reviewSummaryUpdate, (review) => job.review(review), { validator: (review) => validateReview(job, review) });

  await job.open();
  while (!job.supersededBy) {
    const produced = await job.generateRound();
    if (job.supersededBy) break;
    if (!produced) {
      await job.end('failed_all_providers', 'every summarizer failed');
      // A failed run lets the same request start again once a provider is back (ALLOW_DUPLICATE_FAILED_ONLY).
      throw ApplicationFailure.create({ type: 'AllProvidersFailed', message: 'every summarizer failed', nonRetryable: true });
    }
    await job.awaitReview();
    await condition(() => job.reviewed || job.supersededBy !== null);
    if (job.supersededBy && !job.reviewed) break;
    if (!job.regenerate) {
      await condition(allHandlersFinished);
      return job.state;
    }
    job.nextRound();
  }

  await job.end('superseded', job.supersededBy?.reason ?? 'notes_changed');
  await condition(allHandlersFinished);
  return job.state;
}
