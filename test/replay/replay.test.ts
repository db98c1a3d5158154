import assert from 'node:assert/strict';
import { replayFixtures } from '../../workers/replay';
import { assertChangeIsCaught, assertEveryFixtureReplays, loadFixtureFolder, type NamedFixture } from '../helpers/replay-suite';
import { testEnv } from '../setup/env';

describe('replaying histories captured from real document-approval runs', () => {
  let fixtures: NamedFixture[];
  before(async () => {
    fixtures = await loadFixtureFolder('document-approval');
  });

  it('has fixtures for every ending a version can reach, each under its real workflow ID', () => {
    assert.ok(fixtures.length >= 6, `found ${fixtures.length} fixtures`);
    for (const f of fixtures) assert.match(f.workflowId, /^document-approval:[A-Z0-9-]+:v\d+$/);
    for (const f of fixtures) assert.ok((f.history.events?.length ?? 0) > 20, `${f.workflowId} has a real history`);
  });

  it('replays every fixture against the current workflow code without non-determinism', () => assertEveryFixtureReplays(fixtures));

  it('catches a change that alters the order of commands when it is not guarded by a patch', () =>
    assertChangeIsCaught(require.resolve('./nondeterministic/unguarded'), fixtures[0]));

  it('accepts the same change behind patched(), so runs started before it keep replaying', async () => {
    const verdicts = await replayFixtures(
      { workflowsPath: require.resolve('./nondeterministic/patched'), dataConverter: testEnv().dataConverter },
      fixtures,
    );
    assert.equal(verdicts.length, fixtures.length);
    for (const v of verdicts) assert.equal(v.error, undefined, `${v.workflowId}: ${v.error?.message}`);
  });
});
