import assert from 'node:assert/strict';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { LABEL, PATIENT, hoursAgo, tag } from './support';

const findings = { identifiers: LABEL, container: 'SST', preservative: 'clot_activator', volumeMl: 3, hemolyzed: false, clotted: false };
const item = (hemolyzed = false) => ({
  sampleType: 'SERUM',
  tests: ['CMP'],
  barcode: `BC-${tag()}`,
  patient: PATIENT,
  collectedAt: hoursAgo(1),
  arrival: { location: 'Courier box 7', temperatureC: 4, findings: { ...findings, hemolyzed } },
});

describe('batch intake', () => {
  let p: Platform;
  let u: Record<'tech' | 'doc', TestUser>;
  before(async () => {
    p = await startPlatform();
    u = await makeUsers({ tech: ['lab_technician'], doc: ['clinician'] });
  });
  after(() => p.stop());

  it('starts one run per sample, accepts those in hand that pass, leaves the others for a person and reports progress', async () => {
    const samples = [...Array.from({ length: 59 }, () => item()), item(true)];
    const res = await p.api('POST', '/api/v1/sample-batches', { key: u.tech.apiKey, body: { samples, autoAccept: true } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.headers.get('location'), `/api/v1/sample-batches/${res.body.batchId}`);
    const progress = await waitFor(
      async () => {
        const r = await p.api('GET', `/api/v1/sample-batches/${res.body.batchId}`, { key: u.doc.apiKey });
        return r.body.accepted === 59 && r.body.byState.inspected === 1 && r.body;
      },
      'batch accepted',
      60_000,
    );
    assert.equal(progress.size, 60);
    assert.equal(progress.started, 60);
    const held = await testEnv().db('samples').where({ batch_id: res.body.batchId, state: 'inspected' }).first('accession', 'workflow_id');
    const run = await testEnv().client.workflow.getHandle(held.workflow_id).describe();
    assert.equal(run.status.name, 'RUNNING');
    const tasks = await testEnv().db('tasks').where({ entity_id: held.accession, state: 'open' }).pluck('assignee_role');
    assert.deepEqual(tasks, ['lab_director'], 'the failed one waits for the lab director');
  });

  it('refuses a batch with an unknown test code, naming the sample, and registers nothing', async () => {
    const before = (await testEnv().db('sample_batches').count({ n: '*' }).first())!.n;
    const res = await p.api('POST', '/api/v1/sample-batches', {
      key: u.tech.apiKey,
      body: { samples: [item(), { ...item(), tests: ['NOPE'] }] },
    });
    assert.equal(res.status, 422);
    assert.equal(res.body.errors[0].field, 'body.samples.1.tests.0');
    assert.equal((await testEnv().db('sample_batches').count({ n: '*' }).first())!.n, before);
  });

  it('refuses an empty batch and one above 5000 samples', async () => {
    assert.equal((await p.api('POST', '/api/v1/sample-batches', { key: u.tech.apiKey, body: { samples: [] } })).status, 400);
    const tooMany = Array.from({ length: 5001 }, () => ({ sampleType: 'SERUM', patient: {} }));
    const res = await p.api('POST', '/api/v1/sample-batches', { key: u.tech.apiKey, body: { samples: tooMany } });
    assert.ok([400, 413].includes(res.status), `answered ${res.status}`);
  });
});
