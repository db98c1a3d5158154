/**
 * Drives real sample-intake runs (one by one and as a batch) on the test server and saves their histories as replay
 * fixtures in test/fixtures/histories/sample-intake/. Run with `npx mocha test/sample-intake/capture-histories.ts`
 * after a deliberate change to what a run records; commit the new files.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { inspectUpdate, sampleBatchWorkflowId, sampleStateQuery } from '../../common/sample-intake';
import { fetchFixture, saveFixture } from '../../workers/replay';
import { historiesDir } from '../helpers/replay-suite';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { GOOD, LABEL, PATIENT, deliverEvent, hoursAgo, inspected, mustAct, register, tag, waitForAudit } from './support';

const dir = historiesDir('sample-intake');

describe('capturing sample-intake replay fixtures from real runs', () => {
  let p: Platform;
  let u: Record<'doc' | 'tech' | 'director', TestUser>;
  before(async () => {
    p = await startPlatform();
    u = await makeUsers({ doc: ['clinician'], tech: ['lab_technician'], director: ['lab_director'] });
  });
  after(() => p.stop());

  const completed = (workflowId: string) =>
    waitFor(
      async () => (await testEnv().client.workflow.getHandle(workflowId).describe()).status.name === 'COMPLETED',
      `${workflowId} completed`,
    );
  const save = async (name: string, workflowId: string) =>
    saveFixture(join(dir, `${name}.json`), await fetchFixture(testEnv().client, workflowId));
  const result = (workflowId: string, tests: string[]) =>
    deliverEvent(workflowId, { eventId: `r-${tag()}`, source: 'analyser', type: 'result_ready', at: new Date().toISOString(), tests });

  it('captures acceptance, aliquots, storage, routing and results', async () => {
    const { accession, workflowId } = await inspected(p, u.doc, u.tech);
    await mustAct(p, u.tech, accession, 'accept');
    await mustAct(p, u.tech, accession, 'aliquot', { volumesMl: [1, 1] });
    await mustAct(p, u.tech, accession, 'store', {
      piece: `${accession}-A2`,
      freezer: `F-${tag()}`,
      rack: 'R1',
      box: 'B1',
      position: 'A1',
    });
    await mustAct(p, u.tech, accession, 'route', {
      tests: [
        { test: 'CMP', piece: `${accession}-A1` },
        { test: 'TSH', piece: `${accession}-A1` },
      ],
    });
    await result(workflowId, ['CMP', 'TSH']);
    await completed(workflowId);
    await save('accepted-completed', workflowId);
  });

  it('captures a rejection with cascade', async () => {
    const { accession, workflowId } = await inspected(p, u.doc, u.tech);
    await mustAct(p, u.tech, accession, 'accept');
    await mustAct(p, u.tech, accession, 'aliquot', { volumesMl: [1] });
    await mustAct(p, u.tech, accession, 'reject', { code: 'RN', condition: 'Contaminated', disposition: 'discarded' });
    await completed(workflowId);
    await save('rejected-cascade', workflowId);
  });

  it('captures a signed deviation, a partial rejection and a cancellation that was reinstated', async () => {
    const { accession, workflowId, state } = await inspected(p, u.doc, u.tech, {}, { hemolyzed: true });
    await mustAct(p, u.tech, accession, 'cancel', { reason: 'Wrong encounter' });
    await mustAct(p, u.tech, accession, 'reinstate', { reason: 'Corrected' });
    await mustAct(p, u.director, accession, 'accept-with-deviation', {
      comment: 'Mild hemolysis',
      signature: { password: u.director.password, meaning: 'approval', contentHash: state.process.inspection.contentHash },
    });
    await mustAct(p, u.tech, accession, 'reject', { code: 'RH', condition: 'Hemolysed for TSH', disposition: 'retained', tests: ['TSH'] });
    await mustAct(p, u.tech, accession, 'route');
    await result(workflowId, ['CMP']);
    await completed(workflowId);
    await save('deviation-partial-reinstated', workflowId);
  });

  it('captures shipment, transit and STAT timers, a receipt signal delivered twice and a cancellation', async () => {
    const { accession, workflowId } = await register(p, u.tech, {
      submitter: u.doc.username,
      priority: 'stat',
      tests: ['CMP'],
      collectedAt: hoursAgo(0.5),
      timers: { inTransitDue: '1s', statTurnaround: '2s' },
    });
    await deliverEvent(workflowId, { eventId: 'ship-1', source: 'courier', type: 'shipped', at: new Date().toISOString() });
    await waitForAudit(accession, 'sample.in_transit_overdue');
    await deliverEvent(workflowId, {
      eventId: 'recv-1',
      source: 'courier',
      type: 'received',
      at: new Date().toISOString(),
      location: 'Dock',
      temperatureC: 20,
    });
    await deliverEvent(workflowId, {
      eventId: 'recv-1',
      source: 'courier',
      type: 'received',
      at: new Date().toISOString(),
      location: 'Dock',
      temperatureC: 20,
    });
    await waitForAudit(accession, 'sample.stat_overdue');
    await mustAct(p, u.tech, accession, 'cancel', { reason: 'Order withdrawn' });
    await save('stat-timers-cancelled', workflowId);
  });

  it('captures granted actions, delivered events and a forged action given back (taken in turn, behind sample-action-grants)', async () => {
    const { accession, workflowId } = await register(p, u.doc, { tests: ['CMP'] });
    await deliverEvent(workflowId, { eventId: 'ship-1', source: 'courier', type: 'shipped', at: new Date().toISOString() });
    await deliverEvent(workflowId, {
      eventId: 'recv-1',
      source: 'courier',
      type: 'received',
      at: new Date().toISOString(),
      location: 'Dock',
    });
    const handle = testEnv().client.workflow.getHandle(workflowId);
    await waitFor(async () => (await handle.query(sampleStateQuery)).state === 'received' || null, 'received');
    const forged = { actor: u.tech.actor, grant: randomBytes(32).toString('base64url'), findings: GOOD };
    await assert.rejects(handle.executeUpdate(inspectUpdate, { args: [forged] }), 'the forged inspection is refused');
    await mustAct(p, u.tech, accession, 'inspect', { ...GOOD, identifiers: LABEL });
    await mustAct(p, u.tech, accession, 'accept');
    await mustAct(p, u.tech, accession, 'route');
    await result(workflowId, ['CMP']);
    await completed(workflowId);
    await save('granted-delivered-forgery-refused', workflowId);
  });

  it('captures a batch of three samples, each started as its own intake run', async () => {
    const findings = {
      identifiers: LABEL,
      container: 'SST',
      preservative: 'clot_activator',
      volumeMl: 3,
      hemolyzed: false,
      clotted: false,
    };
    const samples = Array.from({ length: 3 }, () => ({
      sampleType: 'SERUM',
      tests: ['CMP'],
      barcode: `BC-${tag()}`,
      patient: PATIENT,
      collectedAt: hoursAgo(1),
      arrival: { location: 'Courier box 7', temperatureC: 4, findings },
    }));
    const res = await p.api('POST', '/api/v1/sample-batches', { key: u.tech.apiKey, body: { samples, autoAccept: true } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const workflowId = sampleBatchWorkflowId(res.body.batchId);
    await completed(workflowId);
    await save('batch-three-samples', workflowId);
  });
});
