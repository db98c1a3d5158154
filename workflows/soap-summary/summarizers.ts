import { ActivityFailure, ApplicationFailure, TimeoutFailure, proxyActivities } from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import type { Activities } from '../../activities';
import type { SummaryAttemptArgs, SummaryAttemptResult } from '../../activities/soap-summary';
import type { Summarizer, SummaryInput } from '../../common/soap-summary';
import { db } from '../lib';

export type SummarizerCall = (args: SummaryAttemptArgs) => Promise<SummaryAttemptResult>;

/**
 * One activity type per summarizer, each with its own timeout (a local model may need longer than a hosted one),
 * so the Web UI shows the fallback step by step. Failures another try cannot mend are raised non-retryable by the
 * activity itself (LLM_ERROR_POLICY); the extractive summarizer is local work, one short step.
 */
export function summarizers(input: SummaryInput): Record<Summarizer, SummarizerCall> {
  const llm = (provider: Summarizer) =>
    proxyActivities<Activities>({
      startToCloseTimeout: (input.timeouts?.[provider] ?? input.attempt.timeout) as Duration,
      retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: input.attempt.maxAttempts },
    });
  return {
    anthropic: llm('anthropic').summarizeWithAnthropic,
    openai: llm('openai').summarizeWithOpenai,
    ollama: llm('ollama').summarizeWithOllama,
    extractive: db.summarizeExtractive,
  };
}

/** The failure type that ended a summarizer's activity, after Temporal's retries. */
export function failureOutcome(err: unknown): string {
  if (err instanceof ActivityFailure) {
    if (err.cause instanceof ApplicationFailure && err.cause.type) return err.cause.type;
    if (err.cause instanceof TimeoutFailure) return 'LlmTimeout';
  }
  return 'LlmFailed';
}
