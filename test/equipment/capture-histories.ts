/**
 * Drives a real instrument run through the API on the test server and saves its histories as replay fixtures in
 * test/fixtures/histories/equipment/: a run that continued as new, and the run it continued in, which sees a
 * certificate lapse and be renewed, a reminder, a failed QC that opens a CAPA, a defect that joins it, maintenance,
 * a return to service and the retirement that ends it. Run with `npx mocha test/equipment/capture-histories.ts`
 * after a deliberate change to what the run records; commit the new files. A result entered on the instrument before
 * the failed QC is listed in Postgres; each file is checked not to name its sample.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { workflowIds } from '../../common/ids';
import { fetchFixture, saveFixture } from '../../workers/replay';
import { startPlatform, type Platform } from '../helpers/platform';
import { historiesDir } from '../helpers/replay-suite';
import { waitFor } from '../helpers/wait';
import { mustAnalysisAct, routedSample, testCode } from '../results/support';
import { testEnv } from '../setup/env';
import { certificate, equipmentUsers, inSeconds, instrumentCode, mustAct, read, verification, type EquipmentUsers } from './support';


describe('capturing instrument replay fixtures from real runs', function () {
  this.timeout(240_000);
  let p: Platform;
  let u: EquipmentUsers;
  before(async () => {
    p = await startPlatform();
    u = await equipmentUsers();
  });
  after(() => p.stop());

  it('records an instrument from commissioning to retirement across a continue-as-new', async () => {
    const code = instrumentCode();
    const workflowId = workflowIds.instrument(code);
    const { db, client } = testEnv();
    // Registered as the API does, with a short history limit so the run continues as new.
    const [row] = await db('instruments')
      .insert({ code, workflow_id: workflowId, name: 'x', manufacturer: 'x', model: 'x', serial_number: 'x', location: 'x', reminder_before: ['20s'], registered_by: u.qa.actor.userId })
      .returning('id');
    const first = await client.workflow.start('instrumentWorkflow', {
      workflowId,
      taskQueue: p.taskQueue,
      args: [{ instrumentId: row.id, code, reminderBefore: ['20s'], continueAsNewAfter: 30 }],
    });
    await mustAct(p, u.qa, code, 'calibrations', certificate(u.tech, u.qa, inSeconds(25)));
    await mustAct(p, u.qa, code, 'return-to-service', verification);
    await mustAct(p, u.tech, code, 'qc', { passed: true, material: 'level 1' });
    await waitFor(async () => (await read(p, u.tech, code)).reasons.includes('calibration_expired'), 'the expiry', 120_000);
    await mustAct(p, u.qa, code, 'calibrations', certificate(u.tech, u.qa, inSeconds(3600)));
    const test = await testCode();
    const accession = await routedSample(p, u.doc, u.tech, [test]);
    await mustAnalysisAct(p, u.tech, accession, test, 'result', { kind: 'numeric', value: 4, unit: 'mmol/L', performedBy: 'b', instrument: code });
    const failed = await mustAct(p, u.tech, code, 'qc', { passed: false, material: 'level 2' });
    assert.deepEqual(failed.lastFailure.impactedResults, [`analysis:${accession}:${test}`]);
    await mustAct(p, u.tech, code, 'defects', { description: 'sample probe bent' });
    await waitFor(async () => (await db('audit_events').where({ entity_id: code, action: 'instrument.capa_linked' }).first()) ?? null, 'the CAPA link');
    await mustAct(p, u.tech, code, 'qc', { passed: true, material: 'level 2' });
    await mustAct(p, u.tech, code, 'maintenance/start', { description: 'probe replaced' });
    await mustAct(p, u.tech, code, 'maintenance/finish', { outcome: 'probe replaced and aligned' });
    await mustAct(p, u.qa, code, 'return-to-service', verification);
    await mustAct(p, u.qa, code, 'retire', { reason: 'replaced by a newer analyser' });
    await waitFor(async () => (await client.workflow.getHandle(workflowId).describe()).status.name === 'COMPLETED', 'the run ended');

    const dir = historiesDir('equipment');
    mkdirSync(dir, { recursive: true });
    // Every run of the chain, followed from the first through each continue-as-new.
    let runId: string | undefined = first.firstExecutionRunId;
    let n = 0;
    while (runId) {
      n += 1;
      const fixture = await fetchFixture(client, workflowId, runId);
      const file = join(dir, `run-${n}.json`);
      await saveFixture(file, fixture);
      assert.ok(!readFileSync(file, 'utf8').includes(accession), `run ${n} names the sample ${accession}`);
      runId = fixture.history.events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
    }
    assert.ok(n > 1, 'the run continued as new');
  });
});
