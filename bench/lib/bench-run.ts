/**
 * What every bench script does around its measurements: prefixed progress lines, integer settings from the
 * environment, and a run that cleans up after a first Ctrl-C (a second one quits at once).
 */
export function benchRun(name: string) {
  let interrupted = false;
  const say = (line: string) => console.log(`[bench:${name}] ${line}`);
  return {
    say,
    /** Throws once Ctrl-C was pressed, so the bench stops at its next step and tears down what it started. */
    checkInterrupted(): void {
      if (interrupted) throw new Error('interrupted');
    },
    intSetting(envName: string, fallback: number, min = 1): number {
      const value = Number(process.env[envName] ?? fallback);
      if (!Number.isInteger(value) || value < min) throw new Error(`${envName} must be an integer ≥ ${min}`);
      return value;
    },
    run(main: () => Promise<void>): void {
      process.on('SIGINT', () => {
        if (interrupted) process.exit(130);
        interrupted = true;
        say('interrupted; cleaning up (Ctrl-C again to quit at once)');
      });
      main().then(
        () => process.exit(0),
        (err: unknown) => {
          if (interrupted) {
            // A Ctrl-C stops the bench at its next step: cleaned up, no figures, the shell's usual status.
            say('stopped after Ctrl-C; what it started is cleaned up');
            process.exit(130);
          }
          console.error(`[bench:${name}] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
          process.exit(1);
        },
      );
    },
  };
}

/** Rate limits high enough that a bench is never refused; every request still pays for its counting. */
export const UNTRIPPED_LIMITS = {
  RATE_LIMIT_POINTS: '1000000000',
  RATE_LIMIT_IP_POINTS: '1000000000',
  RATE_LIMIT_SIGNING_POINTS: '1000000000',
  RATE_LIMIT_SIGNING_IP_POINTS: '1000000000',
  RATE_LIMIT_CONCURRENT: '1000',
};
