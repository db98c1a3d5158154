import { Worker } from '@temporalio/worker';
import { testEnv } from '../setup/env';

/**
 * A worker for one workflow test: the real workflow bundle on the run's dev server, with stub activities instead of
 * Postgres, SMTP and the outside world, on a task queue of its own so no other test's runs reach it.
 */
export async function stubActivityWorker(taskQueue: string, activities: object): Promise<Worker> {
  const env = testEnv();
  return Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: env.workflowBundle,
    dataConverter: env.dataConverter,
    activities,
  });
}
