import assert from 'node:assert/strict';
import { reportStateQuery } from '../../common/reports';
import { waitFor } from '../helpers/wait';
import { labPlatform, routedSample, testCode } from '../results/support';
import { testEnv } from '../setup/env';
import { release, verifiedResult } from './support';

/**
 * The assembly writes the report's record (awaiting release, with its content) inside its activity; the run learns
 * it is assembled only when that activity returns. A lab director who reads the record in that moment and releases
 * it is accepted, and the release waits for the assembly rather than meeting 409 "still being assembled".
 */
describe('reports: a release read from the record before its run finished assembling', function () {
  this.timeout(180_000);
  /** Report runs whose assembly is held, once its record is written, until the test frees it. */
  const holds = new Map<string, { written: () => void; freed: Promise<void> }>();
  const lab = labPlatform({
    wrapActivities: (activities) => ({
      ...activities,
      async assembleReport(args) {
        const assembled = await activities.assembleReport(args);
        const hold = holds.get(args.workflowId);
        holds.delete(args.workflowId); // a retry is not held again
        if (hold) {
          hold.written();
          await hold.freed;
        }
        return assembled;
      },
    }),
  });

  const updatesAccepted = async (workflowId: string) => {
    const history = await testEnv().client.workflow.getHandle(workflowId).fetchHistory();
    return (history.events ?? []).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes).length;
  };

  it('is accepted while the run is assembling, waits for the assembly and signs one report version', async () => {
    const { p, u } = lab;
    const test = await testCode();
    const accession = await routedSample(p, u.doc, u.tech, [test]);
    const workflowId = `report:${accession}:v1`;
    let written!: () => void;
    const recordWritten = new Promise<void>((resolve) => (written = resolve));
    let free!: () => void;
    holds.set(workflowId, { written, freed: new Promise<void>((resolve) => (free = resolve)) });
    try {
      // The verification completes the sample's tests: its run starts the report, whose assembly is then held.
      await verifiedResult(p, u, accession, test);
      await recordWritten;
      const report = testEnv().client.workflow.getHandle(workflowId);
      assert.equal((await report.query(reportStateQuery)).state, 'assembling', 'the run has no answer from its assembly yet');
      const record = await testEnv().db('reports').where({ accession }).select('version', 'state');
      assert.deepEqual(record, [{ version: 1, state: 'awaiting_release' }], 'the record already reads awaiting release');

      let answered = false;
      const releasing = release(p, u.director, accession, 1).finally(() => (answered = true));
      await waitFor(async () => answered || (await updatesAccepted(workflowId)) > 0, 'the release accepted or answered');
      if (answered) {
        const refused = await releasing;
        assert.fail(`the release was answered while the run was assembling: ${refused.status} ${JSON.stringify(refused.body)}`);
      }
      // Accepted, and waiting: the run is still assembling and nothing is signed or released yet.
      assert.equal(answered, false);
      assert.equal((await report.query(reportStateQuery)).state, 'assembling');
      assert.deepEqual(await testEnv().db('reports').where({ accession }).select('version', 'state'), [{ version: 1, state: 'awaiting_release' }]);

      free();
      const released = await releasing;
      assert.equal(released.status, 200, JSON.stringify(released.body));
      assert.equal(released.body.state, 'released');
      assert.equal(await updatesAccepted(workflowId), 1);
      assert.deepEqual(await testEnv().db('reports').where({ accession }).select('version', 'state'), [{ version: 1, state: 'released' }]);
      const signatures = await testEnv().db('signatures').where({ entity_type: 'report' }).whereLike('entity_id', `report:${accession}:%`).select('entity_id', 'meaning');
      assert.deepEqual(signatures, [{ entity_id: workflowId, meaning: 'responsibility' }], 'one report version signed, once');
    } finally {
      free();
    }
  });
});
