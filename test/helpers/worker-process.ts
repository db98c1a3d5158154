import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnWorkerProcess, stopProcess } from '../../scripts/lib/worker-process';
import { testEnv } from '../setup/env';

let bundleFile: string | undefined;

/**
 * The run's workflow bundle as a file, for WORKFLOW_BUNDLE_PATH: a worker process then loads it as production
 * workers load theirs, instead of running webpack at start-up (a minute or more on a loaded machine).
 */
export function testBundleFile(): string {
  if (!bundleFile) {
    const dir = mkdtempSync(join(tmpdir(), 'labflow-test-bundle-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    bundleFile = join(dir, 'workflow-bundle.js');
    writeFileSync(bundleFile, testEnv().workflowBundle.code);
  }
  return bundleFile;
}

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
      WORKFLOW_BUNDLE_PATH: testBundleFile(),
      ...extraEnv,
    },
    under,
  );
}

export const killHard = (child: ChildProcess) => stopProcess(child, 'SIGKILL');
