/** Polls until the check returns something truthy; fails with the last value seen when the time is up. */
export async function waitFor<T>(check: () => Promise<T> | T, what: string, timeoutMs = 30_000, everyMs = 100): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    try {
      last = await check();
    } catch (err) {
      // A query the worker could not take in time on a loaded machine is "not yet": asked again until the deadline.
      if (!queryTimedOut(err) || Date.now() > deadline) throw err;
      last = undefined;
    }
    if (last) return last as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Temporal's answer when no worker took a query before its deadline (the worker busy, not the run wrong). */
function queryTimedOut(err: unknown): boolean {
  const e = err as { message?: string; cause?: { message?: string; code?: number } } | undefined;
  return /Failed to query Workflow/.test(e?.message ?? '') && /DEADLINE_EXCEEDED|query timed out/.test(e?.cause?.message ?? '');
}
