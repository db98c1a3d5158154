import { setWorkflowOptions, workflowInfo } from '@temporalio/workflow';

/**
 * Marks a process that lives for months or years: on a versioned worker (platform/worker-deployment.ts) its runs
 * move to the current build at their next task (AUTO_UPGRADE) instead of staying on the build they started on, and
 * its code changes go behind patched(). An unversioned worker must not be sent a versioning behaviour (the server
 * refuses the task; it still reports a build ID, the bundle's, with no deployment name), so none is declared there.
 */
export function upgradesWithEachBuild<A extends unknown[], R>(workflow: (...args: A) => Promise<R>): void {
  setWorkflowOptions(() => (workflowInfo().currentDeploymentVersion?.deploymentName ? { versioningBehavior: 'AUTO_UPGRADE' } : {}), workflow);
}
