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

  it('refuses an empty batch', async () => {
    const res = await p.api('POST', '/api/v1/sample-batches', { key: u.tech.apiKey, body: { samples: [] } });
    assert.equal(res.status, 400);
    assert.equal(res.body.errors[0].field, 'body.samples');
  });

  describe('a batch of realistic size (about 400 bytes a sample)', () => {
    const n = (i: number) => String(i).padStart(5, '0');
    const realistic = (count: number) =>
      Array.from({ length: count }, (_, i) => ({
        sampleType: 'SERUM',
        priority: 'routine',
        tests: ['CMP', 'TSH'],
        externalId: `LIMS-ORDER-${tag()}-${n(i)}`,
        barcode: `BC-${tag()}-${n(i)}`,
        patient: { name: `Ada Augusta King, Countess of Lovelace ${n(i)}`, dob: '1915-12-10', mrn: `MRN-${n(i)}` },
        collectedAt: hoursAgo(1),
        arrival: {
          location: 'Central receiving, courier box 7',
          temperatureC: 4,
          findings: { ...findings, identifiers: [{ type: 'name', value: `Ada Augusta King, Countess of Lovelace ${n(i)}` }] },
        },
      }));
    // No worker polls this platform's task queue: the batch run that registration starts never starts 5000 sample
    // runs, whose open tasks would otherwise stay behind for every later test of the run.
    let registrationOnly: Platform;
    before(async () => {
      registrationOnly = await startPlatform({ withWorker: false });
    });
    after(() => registrationOnly.stop());

    it('registers exactly 5000 samples, a body far above the default limit', async () => {
      const body = { samples: realistic(5000) };
      const bytes = Buffer.byteLength(JSON.stringify(body));
      assert.ok(bytes / 5000 > 350, `${bytes / 5000} bytes a sample`);
      assert.ok(bytes > 1024 * 1024, 'more than the default body limit of 1 MiB');
      const res = await registrationOnly.api('POST', '/api/v1/sample-batches', { key: u.tech.apiKey, body });
      assert.equal(res.status, 202, JSON.stringify(res.body).slice(0, 500));
      assert.equal(res.body.size, 5000);
      await testEnv().client.workflow.getHandle(res.body.workflowId).terminate('test: only the registration is under test');
      const registered = (await testEnv().db('samples').where({ batch_id: res.body.batchId }).count({ n: '*' }).first())!.n;
      assert.equal(Number(registered), 5000);
    });

    it('refuses 5001 samples with the batch cap (400 naming body.samples, not 413) and registers nothing', async () => {
      const before = (await testEnv().db('sample_batches').count({ n: '*' }).first())!.n;
      const res = await registrationOnly.api('POST', '/api/v1/sample-batches', { key: u.tech.apiKey, body: { samples: realistic(5001) } });
      assert.equal(res.status, 400, JSON.stringify(res.body).slice(0, 500));
      assert.equal(res.body.type, 'urn:labflow:problem:validation');
      assert.deepEqual(
        res.body.errors.map((e: { field: string }) => e.field),
        ['body.samples'],
      );
      assert.match(res.body.errors[0].detail, /5000/);
      assert.equal((await testEnv().db('sample_batches').count({ n: '*' }).first())!.n, before);
    });
  });
});
