/** Thrown out of a start-up step when a stop was requested meanwhile; not a failure of its own. */
export class StopRequested extends Error {
  constructor() {
    super('stop requested');
  }
}

/**
 * The one reason the platform stops, whoever noticed first: a signal, a part that died, the start process going
 * away. Later reasons are dropped, so a crash noticed during an orderly stop does not turn it into a failure.
 */
export class StopRequest {
  reason: string | null = null;
  exitCode = 0;
  readonly requestedPromise: Promise<void>;
  private wake!: () => void;

  constructor() {
    this.requestedPromise = new Promise((resolve) => (this.wake = resolve));
  }

  get requested(): boolean {
    return this.reason !== null;
  }

  /** Returns false when a stop had already been requested. */
  request(reason: string, exitCode: number): boolean {
    if (this.reason !== null) return false;
    this.reason = reason;
    this.exitCode = exitCode;
    this.wake();
    return true;
  }

  throwIfRequested(): void {
    if (this.requested) throw new StopRequested();
  }
}
