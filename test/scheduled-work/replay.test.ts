import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DeterminismViolationError } from '@temporalio/workflow';
import { loadFixture, replayFixtures, type ReplayFixture } from '../../workers/replay';
import { testEnv } from '../setup/env';

const dir = join(__dirname, '..', 'replay', 'scheduled-work');
const workflowType = (f: ReplayFixture) => f.history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;

describe('replaying histories captured from real scheduled-work runs', () => {
  let fixtures: (ReplayFixture & { file: string })[];
  before(async () => {
    fixtures = await Promise.all(
      readdirSync(dir)
        .filter((f) => f.endsWith('.json'))
        .sort()
        .map(async (f) => ({ ...(await loadFixture(join(dir, f))), file: f })),
    );
  });

  it('has fixtures for every scheduled workflow, each under its real workflow ID', () => {
    assert.ok(fixtures.length >= 6, `found ${fixtures.length} fixtures`);
    for (const f of fixtures)
      assert.match(f.workflowId, /^(backup|restore-drill|overdue-reminders|daily-digest|cleanup|health-canary):capture-[0-9a-f]{6}$/);
    for (const f of fixtures) assert.ok((f.history.events?.length ?? 0) > 10, `${f.workflowId} has a real history`);
    assert.deepEqual([...new Set(fixtures.map(workflowType))].sort(), [
      'backupWorkflow',
      'cleanupWorkflow',
      'dailyDigestWorkflow',
      'healthCanaryWorkflow',
      'overdueRemindersWorkflow',
      'restoreDrillWorkflow',
    ]);
  });

  it('replays every fixture against the current workflow code without non-determinism', async () => {
    const verdicts = await replayFixtures({ workflowBundle: testEnv().workflowBundle }, fixtures);
    assert.equal(verdicts.length, fixtures.length);
    for (const v of verdicts) assert.equal(v.error, undefined, `${v.workflowId}: ${v.error?.message}`);
  });

  it('catches a change to the order of commands that is not guarded by a patch', async () => {
    const backup = fixtures.filter((f) => workflowType(f) === 'backupWorkflow');
    assert.ok(backup.length >= 1, 'a backup fixture');
    const verdicts = await replayFixtures({ workflowsPath: require.resolve('./nondeterministic/unguarded') }, backup.slice(0, 1));
    assert.ok(verdicts[0].error instanceof DeterminismViolationError, `expected a determinism violation, got ${verdicts[0].error}`);
  });
});
