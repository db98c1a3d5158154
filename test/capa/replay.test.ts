import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DeterminismViolationError } from '@temporalio/workflow';
import { loadFixture, replayFixtures, type ReplayFixture } from '../../workers/replay';
import { testEnv } from '../setup/env';

const dir = join(__dirname, '..', 'replay', 'capa');

describe('replaying histories captured from real CAPA runs', () => {
  let fixtures: (ReplayFixture & { file: string })[];
  before(async () => {
    fixtures = await Promise.all(
      readdirSync(dir)
        .filter((f) => f.endsWith('.json'))
        .map(async (f) => ({ ...(await loadFixture(join(dir, f))), file: f })),
    );
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

  it('replays every fixture against the current workflow code without non-determinism', async () => {
    for (const f of fixtures) {
      const [verdict] = await replayFixtures({ workflowBundle: testEnv().workflowBundle }, [f]);
      assert.equal(verdict.error, undefined, `${f.file}: ${verdict.error?.message}`);
    }
  });

  it('catches a change that alters the order of commands when it is not guarded by a patch', async () => {
    const [verdict] = await replayFixtures({ workflowsPath: require.resolve('./nondeterministic/unguarded') }, fixtures.slice(0, 1));
    assert.ok(verdict.error instanceof DeterminismViolationError, `expected a determinism violation, got ${verdict.error}`);
  });
});
