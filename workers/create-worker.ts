import type { DataConverter } from '@temporalio/common';
import { Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import type { Activities } from '../activities';
import { workerInterceptors } from '../platform/data-converter';
import { workerDeploymentOptions, type WorkerDeployment } from '../platform/worker-deployment';

export interface WorkerSetup {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  activities: Activities;
  /** A prebuilt workflow bundle (production, tests); the worker bundles workflows/ itself when absent. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** platform/data-converter.ts's dataConverterFor(keys, { side: 'worker' }): the same keys as every client's. */
  dataConverter: DataConverter;
  /** Worker versioning: the deployment and build this worker runs; unversioned when absent. */
  deployment?: WorkerDeployment;
  /** The sticky cache's size (WORKER_MAX_CACHED_WORKFLOWS); the SDK's default, sized from the heap, when absent. */
  maxCachedWorkflows?: number;
}

export function createWorker(setup: WorkerSetup): Promise<Worker> {
  return Worker.create({
    connection: setup.connection,
    namespace: setup.namespace,
    taskQueue: setup.taskQueue,
    activities: setup.activities,
    dataConverter: setup.dataConverter,
    ...(setup.deployment ? { workerDeploymentOptions: workerDeploymentOptions(setup.deployment) } : {}),
    // A prebuilt bundle carries the workflow guard itself (scripts/build-workflow-bundle.ts).
    interceptors: workerInterceptors(),
    ...(setup.workflowBundle ? { workflowBundle: setup.workflowBundle } : { workflowsPath: require.resolve('../workflows') }),
    // Human actions are answered while the run is otherwise idle; keep enough slots for bursts of updates.
    maxConcurrentWorkflowTaskExecutions: 100,
    maxConcurrentActivityTaskExecutions: 100,
    ...(setup.maxCachedWorkflows === undefined
      ? {}
      : {
          maxCachedWorkflows: setup.maxCachedWorkflows,
          // The SDK lowers the slots to the cache's size anyway (with a warning) when the cache is smaller.
          maxConcurrentWorkflowTaskExecutions: Math.min(100, setup.maxCachedWorkflows),
        }),
  });
}
