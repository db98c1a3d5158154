import pino, { type Logger } from 'pino';
import type { Config } from '../common/config';

export type { Logger } from 'pino';

/** Fields that must never reach a log line, wherever they appear. */
export const REDACTED_PATHS = [
  'password',
  '*.password',
  'apiKey',
  '*.apiKey',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'content',
  '*.content',
];

export function createLogger(config: Pick<Config, 'LOG_LEVEL' | 'LOG_PRETTY'>, name: string): Logger {
  const pretty = config.LOG_PRETTY === 'auto' ? Boolean(process.stdout.isTTY) : config.LOG_PRETTY;
  return pino({
    name,
    level: config.LOG_LEVEL,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    transport: pretty ? { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } : undefined,
  });
}
