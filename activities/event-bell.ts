/**
 * Rung at each domain event's commit (the worker's LISTEN on labflow_domain_events rings it), so that a delivery
 * activity that has just sent what was pending can wait a moment for the next event instead of ending its turn: a
 * busy subscription's next event then goes out without a wake-up signal, a workflow task and a new activity between
 * its commit and its POST. Waiters compare a count, so a ring between their read and their wait is not missed.
 */
export interface EventBell {
  /** How often it has rung; read it before looking for work, then wait(since). */
  readonly rung: number;
  /** True as soon as it has rung since `since` (at once if it already has); false after `ms` without a ring or on abort. */
  wait(since: number, ms: number, signal?: AbortSignal): Promise<boolean>;
}

export function createEventBell(): EventBell & { ring(): void } {
  let rung = 0;
  const waiters = new Set<() => void>();
  return {
    get rung() {
      return rung;
    },
    ring() {
      rung++;
      for (const wake of [...waiters]) wake();
    },
    wait(since, ms, signal) {
      if (rung !== since) return Promise.resolve(true);
      if (signal?.aborted || ms <= 0) return Promise.resolve(false);
      return new Promise<boolean>((resolve) => {
        const finish = (rang: boolean) => {
          clearTimeout(timer);
          waiters.delete(wake);
          signal?.removeEventListener('abort', aborted);
          resolve(rang);
        };
        const wake = () => finish(true);
        const aborted = () => finish(false);
        const timer = setTimeout(aborted, ms);
        waiters.add(wake);
        signal?.addEventListener('abort', aborted);
      });
    },
  };
}
