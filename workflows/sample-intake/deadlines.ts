import { durationMs } from '../../common/durations';
import { stabilityDeadline, type SampleIntakeInput, type SampleIntakeState, type TimerKind } from '../../common/sample-intake';
import { acceptedTests } from './state';

export interface DueTimer {
  kind: TimerKind;
  /** Epoch milliseconds. */
  at: number;
}

/**
 * The timers that apply in the sample's current state, soonest first, each with its deadline: transit, specimen and
 * order holds, stability since collection and STAT turnaround. A timer that has fired does not fire again.
 */
export function dueTimers(sample: SampleIntakeState, input: SampleIntakeInput): DueTimer[] {
  const due: DueTimer[] = [];
  const add = (kind: TimerKind, at: number | null) => {
    if (at !== null && !sample.timersFired.includes(kind)) due.push({ kind, at });
  };
  const { timers } = input;
  if (sample.state === 'expected' && sample.hasOrder)
    add('specimen_hold', Date.parse(sample.registeredAt) + durationMs(timers.specimenHold));
  if (sample.state === 'in_transit' && sample.shippedAt)
    add('in_transit_overdue', Date.parse(sample.shippedAt) + durationMs(timers.inTransitDue));
  if (sample.state === 'received' || sample.state === 'inspected') {
    if (!sample.hasOrder && sample.receivedAt) add('order_hold', Date.parse(sample.receivedAt) + durationMs(timers.orderHold));
    if (sample.collectedAt) {
      add('stability_expired', stabilityDeadline(input.criteria, sample.collectedAt, sample.temperatureClass ?? 'room'));
    }
  }
  const resulted = acceptedTests(sample).every((test) => sample.results.includes(test));
  if (sample.priority === 'stat' && sample.receivedAt && sample.state !== 'cancelled' && !resulted) {
    add('stat_overdue', Date.parse(sample.receivedAt) + durationMs(timers.statTurnaround));
  }
  return due.sort((a, b) => a.at - b.at);
}

/** When a cancelled sample's run ends if nobody reinstates it (epoch milliseconds). */
export function cancelRetentionEnds(cancelledAt: string, input: SampleIntakeInput): number {
  return Date.parse(cancelledAt) + durationMs(input.timers.cancelRetention);
}
