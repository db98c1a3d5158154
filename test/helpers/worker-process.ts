import type { ChildProcess } from 'node:child_process';
import { spawnWorkerProcess, stopProcess } from '../../scripts/lib/worker-process';
import { testEnv } from '../setup/env';

/**
 * The production worker as a separate process, against the test environment; `extraEnv` adds or overrides settings,
 * `under` is a command it runs under (scripts/lib/worker-process.ts).
 */
export function spawnWorker(taskQueue: string, extraEnv: Record<string, string> = {}, under: string[] = []): Promise<ChildProcess> {
  const env = testEnv();
  return spawnWorkerProcess(
    {
      ...env.temporalEnv,
      TEMPORAL_TASK_QUEUE: taskQueue,
      DATABASE_URL: env.appDatabaseUrl,
      BACKUP_DATABASE_URL: env.backupDatabaseUrl,
      SMTP_URL: `smtp://127.0.0.1:${env.smtpPort}`,
      MAIL_FROM: 'labflow <labflow@lab.test>',
      PAYLOAD_KEYS: env.payloadKeys,
      ...extraEnv,
    },
    under,
  );
}

export const killHard = (child: ChildProcess) => stopProcess(child, 'SIGKILL');
