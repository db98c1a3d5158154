import assert from 'node:assert/strict';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { auditActions, deliverEvent, getSample, hoursAgo, mustAct, register, waitForAudit } from './support';

/** Durations are inputs, so these tests pass seconds where a lab would pass hours and days. */
describe('sample intake timers', () => {
  let p: Platform;
  let u: Record<'doc' | 'tech' | 'director', TestUser>;
  before(async () => {
    p = await startPlatform();
    u = await makeUsers({ doc: ['clinician'], tech: ['lab_technician'], director: ['lab_director'] });
  });
  after(() => p.stop());

  const openTasks = async (accession: string) =>
    (await testEnv().db('tasks').where({ entity_type: 'sample', entity_id: accession, state: 'open' }).pluck('kind')) as string[];

  // The lab shortens a sample's timers (a clinician may not): the technician registers for the clinician.
  it('escalates an order whose specimen never arrives (order without specimen)', async () => {
    const { accession } = await register(p, u.tech, { submitter: u.doc.username, timers: { specimenHold: '2s' } });
    await waitForAudit(accession, 'sample.specimen_hold');
    assert.ok((await openTasks(accession)).includes('sample.specimen_hold'));
    const row = await getSample(p, u.doc, accession);
    assert.equal(row.overdue, true);
    assert.equal(row.state, 'expected', 'the clock escalates; it never cancels');
    const overdue = await p.api('GET', '/api/v1/samples?overdue=1&state=expected', { key: u.doc.apiKey });
    assert.ok(overdue.body.items.some((i: { accession: string }) => i.accession === accession));
  });

  it('flags a shipped specimen that is overdue in transit, and closes the task once it arrives', async () => {
    const { accession, workflowId } = await register(p, u.tech, { submitter: u.doc.username, timers: { inTransitDue: '2s' } });
    await deliverEvent(workflowId, { eventId: 'courier-1', source: 'courier', type: 'shipped', at: new Date().toISOString() });
    await waitForAudit(accession, 'sample.in_transit_overdue');
    assert.ok((await openTasks(accession)).includes('sample.in_transit_overdue'));
    const notes = await p.api('GET', '/api/v1/notifications', { key: u.doc.apiKey });
    assert.ok(
      notes.body.items.some((n: { kind: string; title: string }) => n.kind === 'sample.in_transit_overdue' && n.title.includes(accession)),
    );
    await mustAct(p, u.tech, accession, 'receive', { location: 'Receiving' });
    assert.deepEqual(await openTasks(accession), ['sample.received']);
  });

  it('holds a specimen without an order and escalates when none is attached in time', async () => {
    const { accession } = await register(p, u.tech, { submitter: u.doc.username, tests: [], timers: { orderHold: '2s' } });
    const received = await mustAct(p, u.tech, accession, 'receive', { location: 'Receiving', temperatureC: 4 });
    assert.equal(received.state, 'received');
    await waitForAudit(accession, 'sample.order_hold');
    const attached = await mustAct(p, u.doc, accession, 'order', { tests: ['LIPID'] });
    assert.deepEqual(attached.requestedTests, ['LIPID']);
  });

  it('warns when a specimen waiting for a decision passes its stability window', async () => {
    // CSF is stable one hour at room temperature: collected 59 min 57 s ago, it expires in about 3 s.
    const { accession } = await register(p, u.doc, {
      sampleType: 'CSF',
      tests: ['CSFCX'],
      collectedAt: new Date(Date.now() - 3_597_000).toISOString(),
    });
    await mustAct(p, u.tech, accession, 'receive', { location: 'Receiving', temperatureC: 21 });
    await waitForAudit(accession, 'sample.stability_expired');
    assert.ok((await openTasks(accession)).includes('sample.stability_expired'));
    const notes = await p.api('GET', '/api/v1/notifications', { key: u.director.apiKey });
    assert.ok(notes.body.items.some((n: { kind: string }) => n.kind === 'sample.stability_expired'));
  });

  it('tells the lab director when a STAT sample misses its turnaround, and ends the run when its results are ready', async () => {
    const { accession, workflowId } = await register(p, u.tech, {
      submitter: u.doc.username,
      priority: 'stat',
      tests: ['CMP'],
      timers: { statTurnaround: '2s' },
      collectedAt: hoursAgo(0.5),
    });
    await mustAct(p, u.tech, accession, 'receive', { location: 'STAT bench', temperatureC: 21 });
    await waitForAudit(accession, 'sample.stat_overdue');
    const notes = await p.api('GET', '/api/v1/notifications', { key: u.director.apiKey });
    assert.ok(
      notes.body.items.some((n: { kind: string; title: string }) => n.kind === 'sample.stat_overdue' && n.title.includes(accession)),
    );
    await mustAct(p, u.tech, accession, 'inspect', {
      identifiers: [
        { type: 'name', value: 'Ada Lovelace' },
        { type: 'dob', value: '1915-12-10' },
      ],
      container: 'SST',
      preservative: 'clot_activator',
      volumeMl: 2,
      temperatureC: 21,
      hemolyzed: false,
      clotted: false,
    });
    await mustAct(p, u.tech, accession, 'accept');
    await mustAct(p, u.tech, accession, 'route');
    await deliverEvent(workflowId, {
      eventId: 'r-1',
      source: 'analyser',
      type: 'result_ready',
      at: new Date().toISOString(),
      tests: ['CMP'],
    });
    // The instrument's result is only received; the sample completes when its test is released or cancelled.
    await waitFor(async () => (await testEnv().db('analyses').where({ accession, test_code: 'CMP' }).first('state'))?.state === 'pending', 'CMP analysis');
    const cancelled = await p.api('POST', `/api/v1/samples/${accession}/analyses/CMP/cancel`, { key: u.tech.apiKey, body: { reason: 'STAT drill' } });
    assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
    await waitFor(
      async () => (await testEnv().client.workflow.getHandle(workflowId).describe()).status.name === 'COMPLETED',
      'run completed',
    );
    assert.equal((await getSample(p, u.doc, accession)).state, 'completed');
    assert.equal((await auditActions(accession)).filter((a) => a === 'sample.stat_overdue').length, 1, 'a timer fires once');
  });

  it('ends the run of a cancelled sample nobody reinstates within the retention period', async () => {
    const { accession, workflowId } = await register(p, u.tech, { submitter: u.doc.username, timers: { cancelRetention: '2s' } });
    await mustAct(p, u.doc, accession, 'cancel', { reason: 'Duplicate order' });
    await waitFor(
      async () => (await testEnv().client.workflow.getHandle(workflowId).describe()).status.name === 'COMPLETED',
      'run completed',
      20_000,
    );
    assert.equal((await getSample(p, u.doc, accession)).state, 'cancelled');
  });
});
