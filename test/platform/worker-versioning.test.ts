import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { temporal } from '@temporalio/proto';
import { workerDeploymentFromConfig, WorkerDeploymentError } from '../../platform/worker-deployment';
import { oneStage } from '../api/support';
import { approve, createDraft, submit } from '../helpers/documents';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { mustAct, register } from '../sample-intake/support';
import { testEnv } from '../setup/env';

const { VersioningBehavior } = temporal.api.enums.v1;

/**
 * A deploy with worker versioning: build 1 runs, build 2 joins the same task queue and becomes current. A sample's
 * intake run (short-lived, PINNED) stays on build 1 for the rest of its life; a document approval (years long,
 * AUTO_UPGRADE) moves to build 2 at its next task; new runs start on build 2.
 */
describe('worker versioning: a new build rolled out beside the old one', () => {
  const deploymentName = `labflow-test-${randomBytes(3).toString('hex')}`;
  let b1: Platform;
  let b2: Platform | undefined;
  let u: { doc: TestUser; tech: TestUser; author: TestUser; reviewer: TestUser };
  const service = () => testEnv().client.connection.workflowService;

  const versioning = async (workflowId: string) => {
    const described = await service().describeWorkflowExecution({ namespace: 'default', execution: { workflowId } });
    const info = described.workflowExecutionInfo?.versioningInfo;
    return { behavior: info?.behavior, buildId: info?.deploymentVersion?.buildId };
  };
  /** Makes a build current once its worker has polled (the server knows a version only from its pollers). */
  const makeCurrent = (buildId: string) =>
    waitFor(
      () =>
        service()
          .setWorkerDeploymentCurrentVersion({ namespace: 'default', deploymentName, buildId, identity: 'labflow-test' })
          .then(() => true)
          .catch(() => null),
      `build ${buildId} to become current`,
    );

  before(async () => {
    b1 = await startPlatform({ deployment: { name: deploymentName, buildId: 'b1' } });
    u = await makeUsers({ doc: ['clinician'], tech: ['lab_technician'], author: ['author'], reviewer: ['reviewer'] });
    await makeCurrent('b1');
  });
  after(async () => {
    await b2?.stop();
    await b1.stop();
  });

  it('keeps a pinned run on its build, moves a long-lived one to the new build, and starts new runs there', async () => {
    const sample = await register(b1, u.doc);
    const draft = await createDraft(b1, u.author);
    const { workflowId: approval } = await submit(b1, u.author, draft.number, draft.version, oneStage([u.reviewer]));
    const started = await waitFor(async () => {
      const [s, d] = await Promise.all([versioning(sample.workflowId), versioning(approval)]);
      return s.buildId && d.buildId ? { s, d } : null;
    }, 'both runs to complete a task on build 1');
    assert.deepEqual(started.s, { behavior: VersioningBehavior.VERSIONING_BEHAVIOR_PINNED, buildId: 'b1' });
    assert.deepEqual(started.d, { behavior: VersioningBehavior.VERSIONING_BEHAVIOR_AUTO_UPGRADE, buildId: 'b1' });

    b2 = await startPlatform({ taskQueue: b1.taskQueue, deployment: { name: deploymentName, buildId: 'b2' } });
    await makeCurrent('b2');

    // The sample's next task: still build 1, which keeps running for it.
    await mustAct(b1, u.tech, sample.accession, 'receive', { location: 'Central receiving', temperatureC: 4 });
    assert.deepEqual(await versioning(sample.workflowId), { behavior: VersioningBehavior.VERSIONING_BEHAVIOR_PINNED, buildId: 'b1' });

    // The approval's next task (a reviewer's signed decision) runs on build 2.
    const decided = await approve(b1, u.reviewer, draft.number, draft.version, draft.contentHash);
    assert.ok([200, 202].includes(decided.status), JSON.stringify(decided.body));
    const moved = await waitFor(async () => {
      const v = await versioning(approval);
      return v.buildId === 'b2' ? v : null;
    }, 'the approval to move to build 2');
    assert.equal(moved.behavior, VersioningBehavior.VERSIONING_BEHAVIOR_AUTO_UPGRADE);

    const later = await register(b1, u.doc);
    const onB2 = await waitFor(async () => {
      const v = await versioning(later.workflowId);
      return v.buildId ? v : null;
    }, 'the new run to complete a task');
    assert.deepEqual(onB2, { behavior: VersioningBehavior.VERSIONING_BEHAVIOR_PINNED, buildId: 'b2' });
  });

  it('takes the deployment name and build together or not at all', () => {
    assert.equal(workerDeploymentFromConfig({}), undefined);
    assert.deepEqual(workerDeploymentFromConfig({ WORKER_DEPLOYMENT_NAME: 'labflow', WORKER_BUILD_ID: '2026.12.06' }), {
      name: 'labflow',
      buildId: '2026.12.06',
    });
    assert.throws(() => workerDeploymentFromConfig({ WORKER_DEPLOYMENT_NAME: 'labflow' }), WorkerDeploymentError);
    assert.throws(() => workerDeploymentFromConfig({ WORKER_BUILD_ID: 'b2' }), WorkerDeploymentError);
  });
});
