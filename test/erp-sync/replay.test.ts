import assert from 'node:assert/strict';
import {
  assertChangeIsCaught,
  assertEveryFixtureReplays,
  loadFixtureFolder,
  workflowTypeOf,
  type NamedFixture,
} from '../helpers/replay-suite';

describe('replaying histories captured from real ERP sync and supplier qualification runs', () => {
  let fixtures: NamedFixture[];
  before(async () => {
    fixtures = await loadFixtureFolder('erp-sync');
  });

  it('has fixtures for the ERP sync (one run that continued as new) and a supplier qualification, under their real workflow IDs', () => {
    assert.ok(fixtures.length >= 3, `found ${fixtures.length} fixtures`);
    for (const f of fixtures) assert.match(f.workflowId, /^(erp-sync:all|supplier-qualification:[\w ]+)$/);
    for (const f of fixtures) assert.ok((f.history.events?.length ?? 0) > 10, `${f.file} has a real history`);
    assert.deepEqual([...new Set(fixtures.map(workflowTypeOf))].sort(), ['erpSyncWorkflow', 'supplierQualificationWorkflow']);
    assert.ok(
      fixtures.some((f) => f.history.events?.some((e) => e.workflowExecutionContinuedAsNewEventAttributes)),
      'a history that ends in continue-as-new',
    );
  });

  it('replays every fixture against the current workflow code without non-determinism', () => assertEveryFixtureReplays(fixtures));

  it('catches a change to the order of commands that is not guarded by a patch', async () => {
    const sync = fixtures.find((f) => workflowTypeOf(f) === 'erpSyncWorkflow');
    assert.ok(sync, 'an ERP sync fixture');
    await assertChangeIsCaught(require.resolve('./nondeterministic/unguarded'), sync);
  });
});
