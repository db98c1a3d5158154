import { ApplicationFailure, patched } from '@temporalio/workflow';
import { FailureType } from '../../common/failures';
import type { SampleIntakeState } from '../../common/sample-intake';
import { grantRefusal, passOnRefusal } from '../lib/proof';

/** Runs recorded after this patch check each action's proof before the next action may look at the state. */
export const SAMPLE_GRANTS_PATCH = 'sample-action-grants';

/** Kept as they are when a refused action is given back: timers fire and events arrive meanwhile. */
const KEPT_ON_UNDO: (keyof SampleIntakeState)[] = ['timersFired', 'appliedEvents'];

/** The refusal of an action's proof, whether it reached the run as an activity failure or as a refusal already. */
export function proofRefusal(err: unknown): ApplicationFailure | undefined {
  if (err instanceof ApplicationFailure && err.type === FailureType.GrantRefused) return err;
  return grantRefusal(err);
}

/**
 * One recorded action at a time. An action changes the run's state before its recording step has checked its
 * proof; if the proof is refused, the state goes back to what it was before the action, so the action after it
 * must not have been judged against it. Each action therefore waits for the one before it to be recorded or
 * refused, is judged again against the state it now meets, and gives back everything it changed when refused.
 * Runs recorded before the patch took their actions as they came, and keep doing so on replay.
 */
export class Turns {
  private last: Promise<void> = Promise.resolve();

  constructor(
    private readonly state: SampleIntakeState,
    private readonly restored: () => void,
  ) {}

  /** Whether this run takes its actions in turn (recorded after the patch, or reaching this point now). */
  get inTurn(): boolean {
    return patched(SAMPLE_GRANTS_PATCH);
  }

  /**
   * Runs `work` in its turn: after `judge` (the Update's validator, again) accepts the state it meets. A refused
   * proof (or a gate refusal) restores the state and refuses the action with the recording step's refusal type.
   */
  async take<T>(work: () => Promise<T>, judge?: () => void): Promise<T> {
    if (!this.inTurn) return work();
    const before = this.last;
    let release!: () => void;
    this.last = new Promise<void>((resolve) => (release = resolve));
    try {
      await before;
      judge?.();
      const saved = JSON.parse(JSON.stringify(this.state)) as SampleIntakeState;
      try {
        return await work();
      } catch (err) {
        const refusal = proofRefusal(err);
        if (!refusal) throw err;
        this.restore(saved);
        passOnRefusal(refusal);
      }
    } finally {
      release();
    }
  }

  private restore(saved: SampleIntakeState): void {
    const target = this.state as unknown as Record<string, unknown>;
    for (const [key, value] of Object.entries(saved)) {
      if (!KEPT_ON_UNDO.includes(key as keyof SampleIntakeState)) target[key] = value;
    }
    this.restored();
  }
}
