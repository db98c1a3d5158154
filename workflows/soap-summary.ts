import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  TimeoutFailure,
  allHandlersFinished,
  condition,
  isCancellation,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import type { Activities } from '../activities';
import type { SummaryAttemptArgs, SummaryAttemptResult } from '../activities/soap-summary';
import { FailureType, refuse } from '../common/failures';
import {
  reviewSummaryUpdate,
  summaryStateQuery,
  supersedeSummarySignal,
  type ReviewSummaryArgs,
  type Summarizer,
  type SummaryInput,
  type SummaryStage,
  type SummaryState,
  type SupersedeArgs,
} from '../common/soap-summary';
import { Assignees, EntityId, EntityType, Stage } from '../common/search-attributes';

// Bookkeeping steps are short transactions: a tight timeout retries work lost with a crashed worker soon.
const book = proxyActivities<Activities>({
  startToCloseTimeout: '15s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
});

/**
 * One summary of one patient's notes, as of the notes' hash in the workflow ID. Each summarizer is tried in the
 * configured order, each call its own activity with its own timeout and retry policy; the first complete answer
 * that passes validation becomes the summary, which a clinician then approves, edits (both signed) or rejects
 * (a new round). A change to the notes supersedes the run wherever it is.
 */
export async function soapSummaryWorkflow(input: SummaryInput): Promise<SummaryState> {
  const { workflowId } = workflowInfo();
  const s: SummaryState = {
    workflowId,
    patientId: input.patientId,
    notesHash: input.notesHash,
    stage: 'requested',
    round: 1,
    providers: input.providers,
    attempts: [],
    provider: null,
    model: null,
    aiGenerated: null,
    summaryId: null,
    contentHash: null,
    reviews: [],
    endedBecause: null,
  };
  let rev = 0;
  let supersededBy: SupersedeArgs | null = null;
  let reviewing = false;
  let generation: CancellationScope | null = null;
  let regenerate = false;
  let roundsUsed = 1;

  // Each LLM provider is its own activity type with its own timeout (a local model may need longer than a hosted
  // one), so the Web UI shows the fallback step by step.
  const llmFor = (provider: Summarizer) =>
    proxyActivities<Activities>({
      startToCloseTimeout: (input.timeouts?.[provider] ?? input.attempt.timeout) as Duration,
      // Failures that another try cannot mend are raised non-retryable by the activity itself (LLM_ERROR_POLICY).
      retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: input.attempt.maxAttempts },
    });
  const callers: Record<Summarizer, (args: SummaryAttemptArgs) => Promise<SummaryAttemptResult>> = {
    anthropic: llmFor('anthropic').summarizeWithAnthropic,
    openai: llmFor('openai').summarizeWithOpenai,
    ollama: llmFor('ollama').summarizeWithOllama,
    extractive: book.summarizeExtractive,
  };

  setHandler(summaryStateQuery, () => s);
  setHandler(supersedeSummarySignal, (args) => {
    if (supersededBy) return;
    supersededBy = args;
    generation?.cancel();
  });
  setHandler(
    reviewSummaryUpdate,
    async (args) => {
      reviewing = true;
      try {
        const result = await book.recordSummaryReview({
          workflowId,
          patientId: s.patientId,
          round: s.round,
          summaryId: args.summaryId,
          actor: args.actor,
          decision: args.decision,
          signature: args.signature,
          editId: args.editId,
          commentId: args.commentId,
        });
        s.reviews.push({ decision: args.decision, by: args.actor.username, at: result.reviewedAt });
        if (args.decision === 'edit') s.contentHash = result.contentHash;
        // Decided before the stage moves: the main loop wakes on the move and reads it.
        regenerate = args.decision === 'reject' && args.regenerate !== false && roundsUsed < input.maxRounds;
        await moveTo(args.decision === 'approve' ? 'approved' : args.decision === 'edit' ? 'edited' : 'rejected');
        return s;
      } finally {
        reviewing = false;
      }
    },
    { validator: validateReview },
  );

  function validateReview(args: ReviewSummaryArgs): void {
    if (!args.actor.roles.includes('clinician')) refuse(FailureType.Forbidden, 'only a clinician reviews a summary');
    if (reviewing) refuse(FailureType.DuplicateDecision, 'another review of this summary is being recorded');
    if (s.stage !== 'ready') refuse(FailureType.WrongStage, `the summary is ${s.stage.replace(/_/g, ' ')}, not awaiting review`);
    if (supersededBy) refuse(FailureType.WrongStage, 'the notes changed; this summary is superseded');
    if (args.summaryId !== s.summaryId) refuse(FailureType.StaleContentHash, 'that is not the summary awaiting review');
    if (args.decision === 'reject') {
      if (!args.commentId) refuse(FailureType.InvalidInput, 'a rejection needs a comment');
      return;
    }
    if (!args.signature) refuse(FailureType.InvalidInput, `to ${args.decision} a summary is an electronic signature`);
    if (args.decision === 'approve' && args.signature.contentHash !== s.contentHash) {
      refuse(FailureType.StaleContentHash, 'the signed content hash is not the summary awaiting review');
    }
    if (args.decision === 'edit' && !args.editId) refuse(FailureType.InvalidInput, 'an edit names the edited text');
  }

  /** The stage moves in the run and its search attributes; returns the revision the Postgres projection must reach. */
  function advance(stage: SummaryStage): number {
    s.stage = stage;
    rev += 1;
    upsertSearchAttributes([
      { key: Stage, value: stage },
      { key: Assignees, value: stage === 'ready' ? [`user:${input.requestedBy.username}`] : null },
    ]);
    return rev;
  }

  /** A stage change with nothing else to write; the steps that write anyway project their stage themselves. */
  async function moveTo(stage: SummaryStage): Promise<void> {
    const at = advance(stage);
    await book.projectSummaryJob({ workflowId, rev: at, stage, round: s.round, provider: s.provider });
  }

  /** Asks each summarizer in turn; returns false when every one failed. Cancelled when the run is superseded. */
  async function generate(): Promise<boolean> {
    for (const provider of s.providers) {
      let maxTokens = input.attempt.maxTokens;
      for (let widened = false; ;) {
        if (s.stage !== 'generating') await moveTo('generating');
        let result: SummaryAttemptResult;
        try {
          result = await callers[provider]({ workflowId, round: s.round, maxTokens });
        } catch (err) {
          if (isCancellation(err)) throw err;
          const outcome = failureOutcome(err);
          s.attempts.push({ round: s.round, provider, outcome, maxTokens });
          if (outcome === 'LlmTruncated' && !widened) {
            widened = true;
            maxTokens *= 2;
            continue;
          }
          break;
        }
        const verdict = await book.validateSummaryCandidate({ attemptId: result.attemptId, rev: advance('validating') });
        s.attempts.push({ round: s.round, provider, outcome: verdict.ok ? 'succeeded' : 'validation_failed', maxTokens });
        if (!verdict.ok) break;
        // The summary and its 'ready' projection are one transaction; the run moves to ready once it is stored.
        const stored = await book.storeSummary({ workflowId, round: s.round, attemptId: result.attemptId, rev: rev + 1 });
        Object.assign(s, {
          provider,
          model: result.model,
          aiGenerated: provider !== 'extractive',
          summaryId: stored.summaryId,
          contentHash: stored.contentHash,
        });
        return true;
      }
    }
    return false;
  }

  async function end(stage: SummaryStage, reason: string): Promise<void> {
    s.endedBecause = reason;
    // Recorded first, then shown: whoever sees the run ended finds its summary marked too.
    await CancellationScope.nonCancellable(() =>
      book.endSummaryJob({ workflowId, rev: rev + 1, round: s.round, stage, reason, supersededBy: supersededBy?.by ?? null }),
    );
    advance(stage);
  }

  upsertSearchAttributes([
    { key: EntityType, value: 'soap-summary' },
    { key: EntityId, value: input.patientId },
  ]);
  const opened = await book.openSummaryJob({
    workflowId,
    patientId: input.patientId,
    notesHash: input.notesHash,
    requestedBy: input.requestedBy,
    providers: s.providers,
    rev: rev + 1,
  });
  s.round = opened.round;
  // The job is recorded as generating already when its notes are current.
  if (opened.notesCurrent) advance('generating');
  else supersededBy = { reason: 'notes_changed' };

  while (!supersededBy) {
    s.summaryId = null;
    s.contentHash = null;
    let produced = false;
    try {
      generation = new CancellationScope();
      produced = await generation.run(generate);
    } catch (err) {
      if (!(isCancellation(err) && supersededBy)) throw err;
    } finally {
      generation = null;
    }
    if (supersededBy) break;
    if (!produced) {
      await end('failed_all_providers', 'every summarizer failed');
      // A failed run lets the same request start again once a provider is back (ALLOW_DUPLICATE_FAILED_ONLY).
      throw ApplicationFailure.create({ type: 'AllProvidersFailed', message: 'every summarizer failed', nonRetryable: true });
    }
    advance('ready');
    await condition(() => s.stage !== 'ready' || supersededBy !== null);
    if (supersededBy && s.stage === 'ready') break;
    if (!regenerate) {
      await condition(allHandlersFinished);
      return s;
    }
    regenerate = false;
    roundsUsed += 1;
    s.round += 1;
  }

  await end('superseded', supersededBy?.reason ?? 'notes_changed');
  await condition(allHandlersFinished);
  return s;
}

/** The failure type that ended a summarizer's activity, after Temporal's retries. */
function failureOutcome(err: unknown): string {
  if (err instanceof ActivityFailure) {
    if (err.cause instanceof ApplicationFailure && err.cause.type) return err.cause.type;
    if (err.cause instanceof TimeoutFailure) return 'LlmTimeout';
  }
  return 'LlmFailed';
}
