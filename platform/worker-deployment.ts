import type { WorkerDeploymentOptions } from '@temporalio/worker';
import type { Config } from '../common/config';

/**
 * Worker versioning (Temporal Worker Deployments): a worker that names its deployment and build declares which
 * code it runs, and the server routes each run's tasks to the build the run belongs to. A run started on a build
 * stays on it (PINNED, the default of every labflow worker) unless its workflow declares otherwise: the processes
 * that live for months or years (document approval with its periodic reviews, CAPA, supplier qualification) move to
 * the current build at their next task (AUTO_UPGRADE) and keep their histories replayable with patched().
 * Off when neither setting is given: tasks then go to any worker on the task queue, as before.
 */
export interface WorkerDeployment {
  name: string;
  buildId: string;
}

export class WorkerDeploymentError extends Error {}

export function workerDeploymentFromConfig(config: Pick<Config, 'WORKER_DEPLOYMENT_NAME' | 'WORKER_BUILD_ID'>): WorkerDeployment | undefined {
  const { WORKER_DEPLOYMENT_NAME: name, WORKER_BUILD_ID: buildId } = config;
  if (!name && !buildId) return undefined;
  if (!name || !buildId) {
    throw new WorkerDeploymentError('WORKER_DEPLOYMENT_NAME and WORKER_BUILD_ID go together: set both (worker versioning) or neither');
  }
  return { name, buildId };
}

export function workerDeploymentOptions(deployment: WorkerDeployment): WorkerDeploymentOptions {
  return {
    useWorkerVersioning: true,
    version: { deploymentName: deployment.name, buildId: deployment.buildId },
    defaultVersioningBehavior: 'PINNED',
  };
}
