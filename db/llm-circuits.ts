import type { Knex } from 'knex';

/**
 * Failures that speak of a provider's health (and are `summary_attempts.outcome` names). Refusals, truncation and
 * failed validation are about one answer and do not count.
 */
export const CIRCUIT_FAILURE_KINDS: ReadonlySet<string> = new Set([
  'rate_limited',
  'overloaded',
  'server_error',
  'timeout',
  'auth',
  'quota_exhausted',
  'invalid_response',
]);

export interface CircuitPolicy {
  /** Consecutive provider-health failures that open the circuit. */
  failureThreshold: number;
  /** How long an open circuit refuses calls before one trial is let through. */
  coolDownMs: number;
  /** How long a half-open trial holds the circuit before another trial may start (default: coolDownMs). */
  trialMs?: number;
}

export type CircuitGate = { allowed: true; trial: boolean } | { allowed: false; openUntil: Date };

export interface CircuitState {
  state: 'closed' | 'open' | 'half_open';
  consecutiveFailures: number;
  openUntil: Date | null;
}

interface Row {
  provider: string;
  state: CircuitState['state'];
  consecutive_failures: number;
  open_until: Date | null;
  trial_until: Date | null;
}

const plus = (at: Date, ms: number) => new Date(at.getTime() + ms);

/**
 * May this provider be called now? Closed: yes. Open before its cool-down ends: no. Open after it, or half-open
 * with no trial running: exactly one caller, across every worker, wins the single UPDATE that claims the trial;
 * the others are refused until the trial's outcome is recorded or its hold expires.
 */
export async function circuitGate(db: Knex, provider: string, policy: CircuitPolicy, now: Date = new Date()): Promise<CircuitGate> {
  const row: Row | undefined = await db('llm_provider_circuits').where({ provider }).first();
  if (!row || row.state === 'closed') return { allowed: true, trial: false };
  if (row.state === 'open' && row.open_until && row.open_until > now) return { allowed: false, openUntil: row.open_until };
  if (row.state === 'half_open' && row.trial_until && row.trial_until > now) return { allowed: false, openUntil: row.trial_until };

  const claimed: Row[] = await db('llm_provider_circuits')
    .where({ provider })
    .andWhere((q) =>
      q
        .where((open) => open.where('state', 'open').andWhere((t) => t.whereNull('open_until').orWhere('open_until', '<=', now)))
        .orWhere((half) => half.where('state', 'half_open').andWhere((t) => t.whereNull('trial_until').orWhere('trial_until', '<=', now))),
    )
    .update({ state: 'half_open', trial_until: plus(now, policy.trialMs ?? policy.coolDownMs), updated_at: now })
    .returning(['provider', 'state', 'consecutive_failures', 'open_until', 'trial_until']);
  if (claimed.length === 1) return { allowed: true, trial: true };

  // Someone else changed the row between the read and the claim: judge by what it is now.
  const current: Row | undefined = await db('llm_provider_circuits').where({ provider }).first();
  if (!current || current.state === 'closed') return { allowed: true, trial: false };
  const until = current.state === 'half_open' ? current.trial_until : current.open_until;
  return { allowed: false, openUntil: until ?? plus(now, policy.coolDownMs) };
}

/**
 * Records a call's outcome. A success closes the circuit and resets the count. A failure of a kind that speaks of
 * the provider's health counts; reaching the threshold, or failing a half-open trial, opens the circuit for the
 * cool-down. Refusals, truncation and failed validation are about one answer, not the provider, and leave it alone.
 * One statement per outcome, so concurrent workers never lose a count.
 */
export async function recordCircuitOutcome(
  db: Knex,
  provider: string,
  outcome: 'success' | 'failure',
  failureKind: string | null,
  policy: CircuitPolicy,
  now: Date = new Date(),
): Promise<CircuitState> {
  if (outcome === 'success') {
    const [row]: Row[] = await db('llm_provider_circuits')
      .insert({ provider, state: 'closed', consecutive_failures: 0, updated_at: now })
      .onConflict('provider')
      .merge({ state: 'closed', consecutive_failures: 0, opened_at: null, open_until: null, trial_until: null, updated_at: now })
      .returning(['state', 'consecutive_failures', 'open_until']);
    return toState(row);
  }
  if (!failureKind || !CIRCUIT_FAILURE_KINDS.has(failureKind)) {
    const row: Row | undefined = await db('llm_provider_circuits').where({ provider }).first();
    return row ? toState(row) : { state: 'closed', consecutiveFailures: 0, openUntil: null };
  }
  const openUntil = plus(now, policy.coolDownMs);
  const { rows } = await db.raw(
    `insert into llm_provider_circuits as c
            (provider, state, consecutive_failures, opened_at, open_until, last_failure, updated_at)
     values (:provider, case when 1 >= :threshold then 'open' else 'closed' end, 1,
             case when 1 >= :threshold then cast(:now as timestamptz) end, case when 1 >= :threshold then cast(:openUntil as timestamptz) end,
             :kind, :now)
     on conflict (provider) do update set
       consecutive_failures = c.consecutive_failures + 1,
       last_failure = :kind,
       updated_at = :now,
       -- A failed trial reopens at once; a closed circuit opens at the threshold; an open one keeps its cool-down.
       state = case when c.state = 'half_open' or (c.state = 'closed' and c.consecutive_failures + 1 >= :threshold)
                    then 'open' else c.state end,
       opened_at = case when c.state = 'half_open' or (c.state = 'closed' and c.consecutive_failures + 1 >= :threshold)
                        then cast(:now as timestamptz) else c.opened_at end,
       open_until = case when c.state = 'half_open' or (c.state = 'closed' and c.consecutive_failures + 1 >= :threshold)
                         then cast(:openUntil as timestamptz) else c.open_until end,
       trial_until = null
     returning state, consecutive_failures, open_until`,
    { provider, threshold: policy.failureThreshold, now, openUntil, kind: failureKind },
  );
  return toState(rows[0]);
}

function toState(row: Pick<Row, 'state' | 'consecutive_failures' | 'open_until'>): CircuitState {
  return { state: row.state, consecutiveFailures: row.consecutive_failures, openUntil: row.open_until ? new Date(row.open_until) : null };
}

/** For operators and health pages: every provider's circuit as recorded. */
export async function listCircuits(db: Knex): Promise<(CircuitState & { provider: string; lastFailure: string | null })[]> {
  const rows = await db('llm_provider_circuits')
    .select('provider', 'state', 'consecutive_failures', 'open_until', 'last_failure')
    .orderBy('provider');
  return rows.map((r: Row & { last_failure: string | null }) => ({ provider: r.provider, lastFailure: r.last_failure, ...toState(r) }));
}
