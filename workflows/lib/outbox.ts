import { allHandlersFinished, condition } from '@temporalio/workflow';
import { mail } from './proxies';

/**
 * Delivers outbox emails in the background of a process: the activity that wrote the business change also wrote
 * the emails to the outbox, so the process never waits for the relay, but it does not end (or continue as new)
 * while a delivery is still under way.
 */
export class OutboxDeliveries {
  private pending = 0;

  deliver(outboxIds: string[]): void {
    if (!outboxIds.length) return;
    this.pending += 1;
    const done = () => void (this.pending -= 1);
    mail.deliverEmails(outboxIds).then(done, done);
  }

  get inFlight(): number {
    return this.pending;
  }

  /** Resolves once every delivery started so far has finished (delivered, or failed for good). */
  async drained(): Promise<void> {
    await condition(() => this.pending === 0);
  }

  /**
   * Resolves at a moment when no handler is running and no delivery is under way, both judged together: an Update
   * accepted while the last email was out is answered (and its own emails sent) before the run ends or continues
   * as new, rather than left behind by a run that had looked only before it came.
   */
  async quiet(): Promise<void> {
    await condition(() => allHandlersFinished() && this.pending === 0);
  }
}
