import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import type { Logger } from '../platform/logger';

const LEVELS: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/**
 * Installs the Temporal runtime once per process: SDK, workflow and activity logs go through pino, and the core's
 * metrics are served for Prometheus when a port is given.
 */
export function installRuntime(log: Logger, metricsPort: number): void {
  const level = (log.level.toUpperCase() === 'FATAL' ? 'ERROR' : log.level.toUpperCase()) as LogLevel;
  Runtime.install({
    logger: new DefaultLogger(level in LEVELS ? level : 'INFO', (entry) => {
      log[LEVELS[entry.level]]({ ...entry.meta, sdk: true }, entry.message);
    }),
    telemetryOptions: {
      // The core's own messages go through the same pino logger as everything else.
      logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} },
      ...(metricsPort ? { metrics: { prometheus: { bindAddress: `0.0.0.0:${metricsPort}` } } } : {}),
    },
  });
}
