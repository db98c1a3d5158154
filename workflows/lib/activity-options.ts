import type { ActivityOptions } from '@temporalio/workflow';
import { FailureType } from '../../common/failures';

/**
 * The named activity option sets every process chooses from. A step that writes to Postgres is one short
 * transaction: a tight timeout means work lost with a crashed worker is retried soon. Refusals an activity raises
 * (unknown record, a taken position, bad input) are never retried.
 */
export const shortTransaction: ActivityOptions = {
  startToCloseTimeout: '15s',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '1m',
    nonRetryableErrorTypes: [FailureType.NotFound, FailureType.PositionTaken, FailureType.InvalidInput],
  },
};

/** Email waits for the relay as long as it takes, without holding up the process. */
export const mailDelivery: ActivityOptions = {
  startToCloseTimeout: '45s',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '15m' },
};

/** An alert waits a while for the relay, but a run does not stay open for it: the in-app notice is there already. */
export const alertDelivery: ActivityOptions = {
  startToCloseTimeout: '45s',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 8 },
};

/** A write to a third party that may be down for a while: it waits for it, without holding up the next decision. */
export const externalWrite: ActivityOptions = {
  startToCloseTimeout: '2m',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '10m' },
};

/** Scheduled housekeeping: minutes of work, a few tries, then the failure shows in the run. */
export const scheduledJob: ActivityOptions = {
  startToCloseTimeout: '15m',
  retry: { initialInterval: '10s', maximumAttempts: 5 },
};

/** Long work (a dump, a verification, a sync page) heartbeats, so a dead worker is noticed within the heartbeat. */
export function longRunning(heartbeatTimeout: ActivityOptions['heartbeatTimeout'], extra: ActivityOptions = {}): ActivityOptions {
  return {
    startToCloseTimeout: '12h',
    heartbeatTimeout,
    retry: { initialInterval: '10s', backoffCoefficient: 2, maximumInterval: '5m', maximumAttempts: 5 },
    ...extra,
  };
}
