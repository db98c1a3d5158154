import type { Actor } from '../../common/roles';
import type { Summarizer } from '../../common/soap-summary';
import { tokensSpentToday } from '../../db/llm-spend';
import type { ApiDeps } from '../deps';
import { Problem } from '../problem';

/**
 * Refuses a new summary run that would ask an LLM provider once the clinician's runs of the day (UTC) have used
 * LLM_DAILY_TOKEN_BUDGET tokens: 429 naming the budget, with Retry-After until midnight UTC. A run that asks only
 * the local extractive summarizer costs nothing and is never refused.
 */
export async function requireLlmBudget(deps: Pick<ApiDeps, 'db' | 'config'>, actor: Actor, providers: Summarizer[]): Promise<void> {
  if (providers.every((p) => p === 'extractive')) return;
  const budget = deps.config.summary.dailyTokenBudget;
  const spent = await tokensSpentToday(deps.db, actor.userId);
  if (spent < budget) return;
  const midnight = new Date();
  midnight.setUTCHours(24, 0, 0, 0);
  throw new Problem(
    429,
    'llm-budget-exhausted',
    'The daily LLM budget is spent',
    `your summary runs have used ${spent} of the ${budget} LLM tokens a clinician may use per day (LLM_DAILY_TOKEN_BUDGET); ` +
      'ask again after midnight UTC, or ask for the extractive summarizer alone (providers: ["extractive"])',
    { budget, spent, resetsAt: midnight.toISOString() },
    { 'Retry-After': String(Math.max(1, Math.ceil((midnight.getTime() - Date.now()) / 1000))) },
  );
}
