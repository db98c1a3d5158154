import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DeterminismViolationError } from '@temporalio/workflow';
import { loadFixture, replayFixtures, type ReplayFixture } from '../../workers/replay';
import { testEnv } from '../setup/env';

const dir = join(__dirname, '..', 'replay', 'sample-intake');

describe('replaying histories captured from real sample-intake runs', () => {
  let fixtures: ReplayFixture[];
  before(async () => {
    fixtures = await Promise.all(
      readdirSync(dir)
        .filter((f) => f.endsWith('.json'))
        .map((f) => loadFixture(join(dir, f))),
    );
  });

  it('has fixtures for acceptance, rejection, deviation and timers, each under its real workflow ID', () => {
    assert.ok(fixtures.length >= 4, `found ${fixtures.length} fixtures`);
    for (const f of fixtures) assert.match(f.workflowId, /^sample-intake:ACC-\d{8}$/);
    for (const f of fixtures) assert.ok((f.history.events?.length ?? 0) > 15, `${f.workflowId} has a real history`);
  });

  it('replays every fixture against the current workflow code without non-determinism', async () => {
    const verdicts = await replayFixtures({ workflowBundle: testEnv().workflowBundle, dataConverter: testEnv().dataConverter }, fixtures);
    assert.equal(verdicts.length, fixtures.length);
    for (const v of verdicts) assert.equal(v.error, undefined, `${v.workflowId}: ${v.error?.message}`);
  });

  it('catches a change to the order of commands that is not guarded by a patch', async () => {
    const verdicts = await replayFixtures(
      { workflowsPath: require.resolve('./nondeterministic/unguarded'), dataConverter: testEnv().dataConverter },
      fixtures.slice(0, 1),
    );
    assert.ok(verdicts[0].error instanceof DeterminismViolationError, `expected a determinism violation, got ${verdicts[0].error}`);
  });
});
