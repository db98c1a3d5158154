import { isCancellation, proxyActivities } from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import type { Activities } from '../../activities';
import type { CoaAttemptArgs } from '../../activities/coa-extraction';
import type { CoaAttemptResult, CoaExtractionInput, CoaProvider } from '../../common/coa-extraction';
import { failureOutcome } from '../soap-summary/summarizers';

type Policy = NonNullable<CoaExtractionInput['attempt']>;

/**
 * One activity type per provider, as the summary's summarizers: Temporal retries the kinds the error table marks
 * retry_same (honouring Retry-After), the activity raises the others non-retryable.
 */
function callers(policy: Policy): Record<CoaProvider, (args: CoaAttemptArgs) => Promise<CoaAttemptResult>> {
  const acts = proxyActivities<Activities>({
    startToCloseTimeout: policy.timeout as Duration,
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: policy.maxAttempts },
  });
  return { anthropic: acts.coaWithAnthropic, openai: acts.coaWithOpenai, ollama: acts.coaWithOllama };
}

const store = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 5 },
});

/**
 * Asks each provider in turn for the certificate's fields; the first answer that passes validation is proposed, and
 * when none does the rules propose. A truncated answer is asked once more with twice the output budget.
 */
export async function askProviders(extractionId: string, providers: CoaProvider[], policy: Policy): Promise<{ source: string }> {
  const call = callers(policy);
  let chosen: string | null = null;
  for (const provider of providers) {
    let maxTokens = policy.maxTokens;
    for (let widened = false; ; ) {
      try {
        const result = await call[provider]({ extractionId, maxTokens });
        if (result.ok) chosen = result.attemptId;
      } catch (err) {
        if (isCancellation(err)) throw err;
        if (failureOutcome(err) === 'LlmTruncated' && !widened) {
          widened = true;
          maxTokens *= 2;
          continue;
        }
      }
      break;
    }
    if (chosen) break;
  }
  return store.storeCoaProposal({ extractionId, attemptId: chosen });
}
