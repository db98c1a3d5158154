import { createHash } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/common';
import type { Actor } from '../../common/roles';
import { FINAL_SUMMARY_STAGES, reviewSummaryUpdate, soapGrantedArgs, summaryStateQuery, type SummaryState } from '../../common/soap-summary';
import type { SignatureInput } from '../../common/signatures';
import { listSignaturesFor } from '../../db/signatures';
import {
  discardReviewTexts,
  findSummaryJob,
  latestSummary,
  latestSummaryStatus,
  reviewerOf,
  storeReviewTexts,
  summaryJobAttempts,
  summaryRoundAttempts,
} from '../../db/summaries';
import type { ApiDeps } from '../deps';
import { liveOrRecorded } from '../live-or-recorded';
import { problems } from '../problem';
import type { ReviewBody } from '../schemas/summaries';
import { grantAction, verifySigner } from '../signing';

type Deps = Pick<ApiDeps, 'db' | 'temporal'>;

export const jobLocation = (jobId: string) => `/api/v1/summary-jobs/${encodeURIComponent(jobId)}`;
export const patientOfJob = (jobId: string) => jobId.split(':')[1];
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

async function liveState({ temporal }: Deps, jobId: string): Promise<SummaryState | null> {
  try {
    return await temporal.workflow.getHandle(jobId).query(summaryStateQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}

/** The job: its stage from the live run while it runs, else as recorded; attempts and dates from the database. */
export async function summaryJobView(deps: Deps, jobId: string) {
  const { db, temporal } = deps;
  const [row, attempts, summary] = await Promise.all([
    findSummaryJob(db, jobId),
    summaryJobAttempts(db, jobId),
    latestSummaryStatus(db, jobId),
  ]);
  const progress = await liveOrRecorded({
    run: !row || !FINAL_SUMMARY_STAGES.includes(row.stage as SummaryState['stage']) ? temporal.workflow.getHandle(jobId) : null,
    query: summaryStateQuery,
    fromLive: (live) => ({
      stage: live.stage as string,
      round: live.round,
      providers: live.providers as string[],
      provider: live.provider as string | null,
    }),
    recorded: row ? { stage: row.stage, round: row.round, providers: row.providers, provider: row.provider } : null,
  });
  if (!progress) throw problems.notFound(`summary job ${jobId}`);
  return {
    jobId,
    patientId: patientOfJob(jobId),
    ...progress.view,
    requestedAt: row?.requested_at ?? null,
    finishedAt: row?.finished_at ?? null,
    attempts: attempts.map((a) => ({
      round: a.round,
      provider: a.provider,
      model: a.model,
      outcome: a.outcome,
      detail: a.error_detail,
      latencyMs: a.latency_ms,
      inputTokens: a.input_tokens,
      outputTokens: a.output_tokens,
      maxTokens: a.max_tokens,
      startedAt: a.started_at,
    })),
    summary: summary ? { id: summary.id, round: summary.round, status: summary.status, location: `${jobLocation(jobId)}/summary` } : null,
    live: progress.live !== null,
  };
}

/** The summary with its provenance and review. */
export async function summaryView({ db }: Deps, jobId: string) {
  const row = await latestSummary(db, jobId);
  if (!row) throw problems.notFound(`a summary for job ${jobId} (it may still be generating)`);
  const reviewer = row.reviewed_by ? await reviewerOf(db, row.reviewed_by) : null;
  const attempts = await summaryRoundAttempts(db, jobId, row.round);
  return {
    id: row.id,
    jobId,
    round: row.round,
    status: row.status,
    text: row.edited_text ?? row.text,
    generatedText: row.text,
    aiGenerated: row.ai_generated,
    contentHash: row.edited_content_hash ?? row.content_hash,
    provenance: {
      provider: row.provider,
      model: row.model,
      promptVersion: row.prompt_version,
      promptHash: row.prompt_hash,
      parameters: row.parameters,
      notesHash: row.notes_hash,
      notes: row.note_hashes,
      validation: { ok: row.validation.ok, issues: row.validation.issues, coverage: row.validation.coverage },
      attempts: attempts.map((a) => ({
        provider: a.provider,
        model: a.model,
        outcome: a.outcome,
        latencyMs: a.latency_ms,
        inputTokens: a.input_tokens,
        outputTokens: a.output_tokens,
      })),
    },
    review: row.review_decision
      ? {
          decision: row.review_decision,
          by: reviewer?.username ?? null,
          printedName: reviewer?.printed_name ?? null,
          comment: row.review_comment,
          at: row.reviewed_at,
        }
      : null,
    signatures: await listSignaturesFor(db, 'soap-summary', row.id),
    createdAt: row.created_at,
  };
}

/** Waits for the job to reach review (or an end) within the bound; false when it has not. */
export async function waitForReady(deps: Deps, jobId: string, waitMs: number): Promise<boolean> {
  const until = Date.now() + waitMs;
  for (;;) {
    const state = await liveState(deps, jobId);
    if (!state || state.stage === 'ready' || FINAL_SUMMARY_STAGES.includes(state.stage)) return true;
    if (Date.now() >= until) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A clinician's review: the signature verified (approve, edit), the edited text and comment stored, a single-use
 * grant written for exactly this decision (bound to the password check when signed), then the run asked to record
 * it. The run's recording step consumes the grant and re-checks the reviewer's role and care team. A refused
 * review leaves no text behind.
 */
export async function reviewSummary(deps: Pick<ApiDeps, 'db' | 'temporal' | 'config' | 'log'>, actor: Actor, jobId: string, body: ReviewBody) {
  const { db, temporal } = deps;
  const current = await latestSummaryStatus(db, jobId);
  if (!current) throw problems.conflict('wrong-stage', 'there is no summary awaiting review yet');
  if (body.decision === 'edit' && body.signature.contentHash !== sha256(body.text)) {
    throw problems.unprocessable('content-hash-mismatch', 'signature.contentHash must be the SHA-256 of the edited text you sign');
  }
  let signature: SignatureInput | undefined;
  if (body.decision !== 'reject') {
    signature = await verifySigner(deps, actor, body.signature, { entityType: 'soap-summary', entityId: current.id });
  }
  const stored = await storeReviewTexts(db, actor, current.id, {
    ...(body.decision === 'edit' ? { edit: { text: body.text, contentHash: sha256(body.text) } } : {}),
    ...(body.comment ? { comment: body.comment } : {}),
  });
  try {
    const review = {
      decision: body.decision,
      summaryId: current.id,
      signature,
      editId: stored.editId,
      commentId: stored.commentId,
      regenerate: body.decision === 'reject' ? body.regenerate : undefined,
    };
    const grant = await grantAction(deps, actor, { workflowId: jobId, action: 'soap.review', args: soapGrantedArgs.review(review), signature });
    const state = await temporal.workflow.getHandle(jobId).executeUpdate(reviewSummaryUpdate, { args: [{ actor, grant, ...review }] });
    return { job: await summaryJobView(deps, jobId), stage: state.stage, round: state.round };
  } catch (err) {
    await discardReviewTexts(db, stored);
    throw err;
  }
}
