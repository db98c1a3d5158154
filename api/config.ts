import type { Config } from '../common/config';
import { durationMs } from '../common/durations';
import type { ApiConfig } from './deps';

export function apiConfig(config: Config): ApiConfig {
  return {
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    bodyLimitBytes: config.API_BODY_LIMIT_BYTES,
    apiKeyCacheTtlMs: durationMs(config.API_KEY_CACHE_TTL),
    signing: {
      maxFailures: config.SIGNING_MAX_FAILURES,
      failureWindowMs: durationMs(config.SIGNING_FAILURE_WINDOW),
      lockMs: durationMs(config.SIGNING_LOCK),
    },
    documentDefaults: {
      stageDue: config.DOC_STAGE_DUE,
      reminderBefore: config.DOC_REMINDER_BEFORE,
      periodicReview: config.DOC_PERIODIC_REVIEW,
    },
  };
}
