import assert from 'node:assert/strict';
import {
  assertChangeIsCaught,
  assertEveryFixtureReplays,
  loadFixtureFolder,
  workflowTypeOf,
  type NamedFixture,
} from '../helpers/replay-suite';

describe('replaying histories captured from real scheduled-work runs', () => {
  let fixtures: NamedFixture[];
  before(async () => {
    fixtures = await loadFixtureFolder('scheduled-work');
  });

  it('has fixtures for every scheduled workflow, each under its real workflow ID', () => {
    assert.ok(fixtures.length >= 6, `found ${fixtures.length} fixtures`);
    for (const f of fixtures)
      assert.match(f.workflowId, /^(backup|restore-drill|overdue-reminders|daily-digest|cleanup|health-canary):capture-[0-9a-f]{6}$/);
    for (const f of fixtures) assert.ok((f.history.events?.length ?? 0) > 10, `${f.workflowId} has a real history`);
    assert.deepEqual([...new Set(fixtures.map(workflowTypeOf))].sort(), [
      'backupWorkflow',
      'cleanupWorkflow',
      'dailyDigestWorkflow',
      'healthCanaryWorkflow',
      'overdueRemindersWorkflow',
      'restoreDrillWorkflow',
    ]);
  });

  it('replays every fixture against the current workflow code without non-determinism', () => assertEveryFixtureReplays(fixtures));

  it('catches a change to the order of commands that is not guarded by a patch', async () => {
    const backup = fixtures.find((f) => workflowTypeOf(f) === 'backupWorkflow');
    assert.ok(backup, 'a backup fixture');
    await assertChangeIsCaught(require.resolve('./nondeterministic/unguarded'), backup);
  });
});
