import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DeterminismViolationError } from '@temporalio/workflow';
import { fetchFixture } from '../../workers/replay';
import { startPlatform } from '../helpers/platform';
import { bundleWithInterceptors, historiesDir, loadFixtureFolder, replayEach, type NamedFixture } from '../helpers/replay-suite';
import { testEnv } from '../setup/env';

/**
 * The life of one change to recorded behaviour (a timer before anything else), from patched() to deprecatePatch()
 * to no call at all, checked against real histories recorded under each step: which histories each step's code
 * replays, and so when an operator may take the next step (docs/operations.md, "Rolling out new workflow code").
 */
describe('a change from patched() through deprecatePatch() to no call', () => {
  let bundles: Record<'patched' | 'deprecated' | 'removed', { code: string }>;
  let histories: Record<'before' | 'patched' | 'deprecated', NamedFixture>;

  /** A health-canary run (one activity, seconds long) on a worker running this code, and its history. */
  async function recordUnder(code: { code: string }, name: string): Promise<NamedFixture> {
    const p = await startPlatform({ workflowBundle: code });
    try {
      const workflowId = `patch-lifecycle-${name}-${randomBytes(3).toString('hex')}`;
      const handle = await testEnv().client.workflow.start('healthCanaryWorkflow', { taskQueue: p.taskQueue, workflowId, args: [] });
      await handle.result();
      return { ...(await fetchFixture(testEnv().client, workflowId)), file: `${name} (recorded here)` };
    } finally {
      await p.stop();
    }
  }

  const verdict = async (code: { code: string }, history: NamedFixture) => (await replayEach(code, [history]))[0].error;

  before(async function () {
    this.timeout(300_000);
    const [patched, deprecated, removed] = await Promise.all([
      bundleWithInterceptors(require.resolve('./changes/timer-first-patched')),
      bundleWithInterceptors(require.resolve('./changes/timer-first-deprecated')),
      bundleWithInterceptors(require.resolve('./changes/timer-first-unguarded')),
    ]);
    bundles = { patched, deprecated, removed };
    const before = (await loadFixtureFolder('scheduled-work')).find((f) => f.history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name === 'healthCanaryWorkflow');
    assert.ok(before, `a healthCanaryWorkflow history in ${historiesDir('scheduled-work')}`);
    histories = { before, patched: await recordUnder(patched, 'patched'), deprecated: await recordUnder(deprecated, 'deprecated') };
  });

  it('patched(): runs recorded before the change and under it replay', async () => {
    assert.equal(await verdict(bundles.patched, histories.before), undefined);
    assert.equal(await verdict(bundles.patched, histories.patched), undefined);
  });

  it('deprecatePatch(): runs recorded under patched() and under it replay; a run from before the change does not', async () => {
    assert.equal(await verdict(bundles.deprecated, histories.patched), undefined);
    assert.equal(await verdict(bundles.deprecated, histories.deprecated), undefined);
    assert.ok((await verdict(bundles.deprecated, histories.before)) instanceof DeterminismViolationError);
  });

  it('no call: runs recorded under deprecatePatch() replay', async () => {
    assert.equal(await verdict(bundles.removed, histories.deprecated), undefined);
  });
});
