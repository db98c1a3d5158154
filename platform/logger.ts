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

/** A logger to standard output, or to the given file (JSON lines, never pretty). */
export function createLogger(config: Pick<Config, 'LOG_LEVEL' | 'LOG_PRETTY'>, name: string, file?: string): Logger {
  const options = { name, level: config.LOG_LEVEL, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } };
  if (file) return pino(options, pino.destination({ dest: file, mkdir: true, sync: false }));
  const pretty = config.LOG_PRETTY === 'auto' ? Boolean(process.stdout.isTTY) : config.LOG_PRETTY;
  return pino({
    ...options,
    transport: pretty ? { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } : undefined,
  });
}
