import assert from 'node:assert/strict';
import { reportStateQuery } from '../../common/reports';
import { labPlatform } from '../results/support';
import { testEnv } from '../setup/env';
import { assemblyHolds, releaseAcceptedWhileAssembling, updatesAccepted, verifiedResult } from './support';

/**
 * The assembly writes the report's record (awaiting release, with its content) inside its activity; the run learns
 * it is assembled only when that activity returns. A lab director who reads the record in that moment and releases
 * it is accepted, and the release waits for the assembly rather than meeting 409 "still being assembled".
 */
describe('reports: a release read from the record before its run finished assembling', function () {
  this.timeout(180_000);
  const assembly = assemblyHolds();
  const lab = labPlatform({ wrapActivities: assembly.wrapActivities });
  const versionsOf = (accession: string) => testEnv().db('reports').where({ accession }).orderBy('version').select('version', 'state');

  it('is accepted while the run is assembling, waits for the assembly and signs one report version', async () => {
    const { p, u } = lab;
    const held = await assembly.heldSample(p, u);
    const { test, accession, workflowId } = held;
    try {
      // The verification completes the sample's tests: its run starts the report, whose assembly is then held.
      await verifiedResult(p, u, accession, test);
      await held.recordWritten;
      const report = testEnv().client.workflow.getHandle(workflowId);
      assert.equal((await report.query(reportStateQuery)).state, 'assembling', 'the run has no answer from its assembly yet');
      assert.deepEqual(await versionsOf(accession), [{ version: 1, state: 'awaiting_release' }], 'the record already reads awaiting release');

      const { releasing, answered } = await releaseAcceptedWhileAssembling(p, u.director, accession);
      // Accepted, and waiting: the run is still assembling and nothing is signed or released yet.
      assert.equal(answered(), false);
      assert.equal((await report.query(reportStateQuery)).state, 'assembling');
      assert.deepEqual(await versionsOf(accession), [{ version: 1, state: 'awaiting_release' }]);

      held.free();
      const released = await releasing;
      assert.equal(released.status, 200, JSON.stringify(released.body));
      assert.equal(released.body.state, 'released');
      assert.equal(await updatesAccepted(workflowId), 1);
      assert.deepEqual(await versionsOf(accession), [{ version: 1, state: 'released' }]);
      const signatures = await testEnv()
        .db('signatures')
        .where({ entity_type: 'report' })
        .whereLike('entity_id', `report:${accession}:%`)
        .select('entity_id', 'meaning');
      assert.deepEqual(signatures, [{ entity_id: workflowId, meaning: 'responsibility' }], 'one report version signed, once');
    } finally {
      held.free();
    }
  });
});
