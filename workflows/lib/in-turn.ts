/**
 * Actions taken one at a time: each runs after the one before it has been recorded or refused, judged again against
 * the state it then meets. A refused action does not stop the ones after it.
 */
export function turnQueue() {
  let last: Promise<unknown> = Promise.resolve();
  return {
    run(judge: () => void, work: () => Promise<void>): Promise<void> {
      const next = last.then(async () => {
        judge();
        await work();
      });
      last = next.catch(() => undefined);
      return next;
    },
    /** Resolves once every action taken so far has been recorded or refused. */
    settled: (): Promise<unknown> => last,
  };
}
