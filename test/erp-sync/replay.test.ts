import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DeterminismViolationError } from '@temporalio/workflow';
import { loadFixture, replayFixtures, type ReplayFixture } from '../../workers/replay';
import { testEnv } from '../setup/env';

const dir = join(__dirname, '..', 'replay', 'erp-sync');
const workflowType = (f: ReplayFixture) => f.history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;

describe('replaying histories captured from real ERP sync and supplier qualification runs', () => {
  let fixtures: (ReplayFixture & { file: string })[];
  before(async () => {
    fixtures = await Promise.all(
      readdirSync(dir)
        .filter((f) => f.endsWith('.json'))
        .sort()
        .map(async (f) => ({ ...(await loadFixture(join(dir, f))), file: f })),
    );
  });

  it('has fixtures for the ERP sync (one run that continued as new) and a supplier qualification, under their real workflow IDs', () => {
    assert.ok(fixtures.length >= 3, `found ${fixtures.length} fixtures`);
    for (const f of fixtures) assert.match(f.workflowId, /^(erp-sync:all|supplier-qualification:[\w ]+)$/);
    for (const f of fixtures) assert.ok((f.history.events?.length ?? 0) > 10, `${f.file} has a real history`);
    assert.deepEqual([...new Set(fixtures.map(workflowType))].sort(), ['erpSyncWorkflow', 'supplierQualificationWorkflow']);
    assert.ok(
      fixtures.some((f) => f.history.events?.some((e) => e.workflowExecutionContinuedAsNewEventAttributes)),
      'a history that ends in continue-as-new',
    );
  });

  it('replays every fixture against the current workflow code without non-determinism', async () => {
    // One at a time: the runs of one continued-as-new sync share a workflow ID.
    for (const f of fixtures) {
      const [verdict] = await replayFixtures({ workflowBundle: testEnv().workflowBundle }, [f]);
      assert.equal(verdict.error, undefined, `${f.file}: ${verdict.error?.message}`);
    }
  });

  it('catches a change to the order of commands that is not guarded by a patch', async () => {
    const sync = fixtures.filter((f) => workflowType(f) === 'erpSyncWorkflow');
    assert.ok(sync.length >= 1, 'an ERP sync fixture');
    const verdicts = await replayFixtures({ workflowsPath: require.resolve('./nondeterministic/unguarded') }, sync.slice(0, 1));
    assert.ok(verdicts[0].error instanceof DeterminismViolationError, `expected a determinism violation, got ${verdicts[0].error}`);
  });
});
