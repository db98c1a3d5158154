import { StartError } from './say';

/** Polls until GET `url` answers 2xx. `giveUp` is asked between attempts, so a stop does not wait out the deadline. */
export async function waitForHttpOk(url: string, options: { timeoutMs: number; giveUp: () => boolean }): Promise<boolean> {
  const deadline = Date.now() + options.timeoutMs;
  while (Date.now() < deadline) {
    if (options.giveUp()) return false;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await response.body?.cancel();
      if (response.ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new StartError(`${url} did not answer within ${Math.round(options.timeoutMs / 1000)} s`);
}
