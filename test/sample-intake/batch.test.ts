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
  let u: Record<'tech' | 'doc' | 'provider', TestUser>;
  before(async () => {
    p = await startPlatform();
    u = await makeUsers({ tech: ['lab_technician'], doc: ['clinician'], provider: ['clinician'] });
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

  it('stores each sample’s ordering provider, and none for a sample naming none', async () => {
    const [named, unnamed, other] = [{ ...item(), orderingProvider: u.provider.username }, item(), { ...item(), orderingProvider: u.doc.username }];
    const res = await p.api('POST', '/api/v1/sample-batches', { key: u.tech.apiKey, body: { samples: [named, unnamed, other] } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const providerOf = async (barcode: string) =>
      (await testEnv().db('samples').where({ source: 'api', barcode }).first('ordering_provider_id')).ordering_provider_id;
    assert.equal(await providerOf(named.barcode), u.provider.actor.userId);
    assert.equal(await providerOf(unnamed.barcode), null);
    assert.equal(await providerOf(other.barcode), u.doc.actor.userId);
    const audit = await testEnv()
      .db('audit_events as a')
      .join('samples as s', 's.accession', 'a.entity_id')
      .where({ 's.barcode': named.barcode, 'a.action': 'sample.registered' })
      .first('a.details');
    assert.equal(audit.details.orderingProviderId, u.provider.actor.userId);
  });

  it('refuses a batch naming an unknown or non-clinician ordering provider, naming each such sample, and registers nothing', async () => {
    const samples = [
      { ...item(), orderingProvider: u.provider.username },
      { ...item(), orderingProvider: `nobody-${tag()}` },
      item(),
      { ...item(), orderingProvider: u.tech.username },
    ];
    const res = await p.api('POST', '/api/v1/sample-batches', { key: u.tech.apiKey, body: { samples } });
    assert.equal(res.status, 422, JSON.stringify(res.body));
    assert.equal(res.body.type, 'urn:labflow:problem:unknown-ordering-provider');
    assert.deepEqual(
      res.body.errors.map((e: { field: string }) => e.field),
      ['body.samples.1.orderingProvider', 'body.samples.3.orderingProvider'],
    );
    assert.match(res.body.errors[1].detail, /not a clinician/);
    const written = await testEnv()
      .db('samples')
      .whereIn(
        'barcode',
        samples.map((s) => s.barcode),
      )
      .first('accession');
    assert.equal(written ?? null, null);
  });

  it('refuses a provider who is not a clinician with its own problem type', async () => {
    const sample = { ...item(), orderingProvider: u.tech.username };
    const res = await p.api('POST', '/api/v1/sample-batches', { key: u.tech.apiKey, body: { samples: [item(), sample] } });
    assert.equal(res.status, 422);
    assert.equal(res.body.type, 'urn:labflow:problem:ordering-provider-not-clinician');
    assert.equal(res.body.errors[0].field, 'body.samples.1.orderingProvider');
    assert.equal((await testEnv().db('samples').where({ barcode: sample.barcode }).first()) ?? null, null);
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

    it('registers exactly 5000 samples, a body far above the default limit, each with its ordering provider', async () => {
      const body = { samples: realistic(5000).map((s, i) => ({ ...s, orderingProvider: i % 2 ? u.provider.username : u.doc.username })) };
      const bytes = Buffer.byteLength(JSON.stringify(body));
      assert.ok(bytes / 5000 > 350, `${bytes / 5000} bytes a sample`);
      assert.ok(bytes > 1024 * 1024, 'more than the default body limit of 1 MiB');
      const res = await registrationOnly.api('POST', '/api/v1/sample-batches', { key: u.tech.apiKey, body });
      assert.equal(res.status, 202, JSON.stringify(res.body).slice(0, 500));
      assert.equal(res.body.size, 5000);
      await testEnv().client.workflow.getHandle(res.body.workflowId).terminate('test: only the registration is under test');
      const registered = (await testEnv().db('samples').where({ batch_id: res.body.batchId }).count({ n: '*' }).first())!.n;
      assert.equal(Number(registered), 5000);
      const byProvider = await testEnv()
        .db('samples')
        .where({ batch_id: res.body.batchId })
        .groupBy('ordering_provider_id')
        .select('ordering_provider_id', testEnv().db.raw('count(*)::int as n'));
      assert.deepEqual(
        Object.fromEntries(byProvider.map((r: { ordering_provider_id: string; n: number }) => [r.ordering_provider_id, r.n])),
        { [u.provider.actor.userId]: 2500, [u.doc.actor.userId]: 2500 },
      );
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
