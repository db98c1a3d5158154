import assert from 'node:assert/strict';
import { assertChangeIsCaught, assertEveryFixtureReplays, loadFixtureFolder, type NamedFixture } from '../helpers/replay-suite';

describe('replaying histories captured from real CAPA runs', () => {
  let fixtures: NamedFixture[];
  before(async () => {
    fixtures = await loadFixtureFolder('capa');
  });

  it('has fixtures under their real workflow IDs, one of them a run that continued as new', () => {
    assert.ok(fixtures.length >= 5, `found ${fixtures.length} fixtures`);
    for (const f of fixtures) assert.match(f.workflowId, /^capa:CAPA-\d{4}-\d{4,}$/);
    const continued = fixtures.filter((f) => f.history.events?.some((e) => e.workflowExecutionContinuedAsNewEventAttributes));
    assert.ok(continued.length >= 1, 'a history that ends in continue-as-new');
    assert.ok(
      fixtures.some((f) => f.history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId),
      'a history that began as a continuation',
    );
  });

  it('replays every fixture against the current workflow code without non-determinism', () => assertEveryFixtureReplays(fixtures));

  it('catches a change that alters the order of commands when it is not guarded by a patch', () =>
    assertChangeIsCaught(require.resolve('./nondeterministic/unguarded'), fixtures[0]));
});
