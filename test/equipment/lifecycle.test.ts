import assert from 'node:assert/strict';
import { driftsFrom, responseRecorder } from '../helpers/openapi-conformance';
import { startPlatform, type Platform } from '../helpers/platform';
import { waitFor } from '../helpers/wait';
import { analysisAct, mustAnalysisAct, routedSample, testCode } from '../results/support';
import { testEnv } from '../setup/env';
import { act, certificate, equipmentUsers, inService, inSeconds, instrumentCode, mustAct, read, register, verification, type EquipmentUsers } from './support';

const result = (instrument: string, extra: Record<string, unknown> = {}) => ({ kind: 'numeric', value: 4.2, unit: 'mmol/L', performedBy: 'bench 2', instrument, ...extra });

describe('equipment: an instrument from commissioning to retirement', function () {
  this.timeout(180_000);
  const recorder = responseRecorder();
  let p: Platform;
  let u: EquipmentUsers;
  before(async () => {
    p = await startPlatform({ onResponse: recorder.middleware });
    u = await equipmentUsers();
  });
  after(() => p.stop());

  it('a failed QC takes it out of service, lists the results since the last pass, opens a CAPA that a defect then joins', async () => {
    const code = instrumentCode();
    const ready = await inService(p, u, code, inSeconds(3600));
    assert.equal(ready.state, 'in_service');
    assert.equal(ready.usable, true);
    assert.equal(ready.statusLabel, 'in service');
    const test = await testCode();
    const accession = await routedSample(p, u.doc, u.tech, [test, await testCode()]);
    const [first, second] = (await testEnv().db('analyses').where({ accession }).orderBy('test_code')).map((a) => a.test_code as string);

    await mustAct(p, u.tech, code, 'qc', { passed: true, material: 'PreciControl level 1' });
    await mustAnalysisAct(p, u.tech, accession, first, 'result', result(code));
    const failed = await mustAct(p, u.tech, code, 'qc', { passed: false, material: 'PreciControl level 2', note: 'level 2 out by 4 SD' });
    assert.equal(failed.state, 'out_of_service');
    assert.deepEqual(failed.reasons, ['qc_failed']);
    assert.equal(failed.usable, false);
    assert.equal(failed.statusLabel, 'out of service: qc_failed');
    assert.deepEqual(failed.lastFailure.impactedResults, [`analysis:${accession}:${first}`]);
    const capa = failed.lastFailure.capa;
    assert.match(capa, /^capa:CAPA-\d{4}-\d+$/);
    await waitFor(
      async () => testEnv().db('capa_sources').where({ capa_number: capa.slice(5), source_type: 'instrument', source_id: code }).first(),
      'the CAPA run naming the instrument',
    );

    // Results are refused on it now, QC runs are not.
    const refused = await analysisAct(p, u.tech, accession, second, 'result', result(code));
    assert.equal(refused.status, 409);
    assert.equal(refused.body.type.endsWith('instrument-not-usable'), true, JSON.stringify(refused.body));
    assert.match(refused.body.detail, /qc_failed/);
    assert.equal(Number((await testEnv().db('analysis_entries').where({ instrument: code }).count({ n: '*' }))[0].n), 1);
    await mustAnalysisAct(p, u.tech, accession, second, 'result', result(code, { qcRun: true }));

    // A defect on the same instrument joins the open CAPA rather than opening another.
    const defect = await mustAct(p, u.tech2, code, 'defects', { description: 'Sample probe bent' });
    assert.deepEqual(defect.reasons.sort(), ['defect', 'qc_failed']);
    assert.equal(defect.lastFailure.capa, capa);
    await waitFor(
      async () => testEnv().db('audit_events').where({ entity_type: 'instrument', entity_id: code, action: 'instrument.capa_linked' }).first(),
      'the link to the open CAPA',
    );
    assert.equal((await testEnv().db('capa_sources').where({ source_type: 'instrument', source_id: code })).length, 1);

    // Back to service: a verification record is needed, and nothing it does not clear may remain.
    const bare = await act(p, u.qa, code, 'return-to-service', {});
    assert.equal(bare.status, 422);
    assert.equal(bare.headers.get('content-type')?.startsWith('application/problem+json'), true);
    const stillFailed = await act(p, u.qa, code, 'return-to-service', verification);
    assert.equal(stillFailed.status, 409);
    assert.match(stillFailed.body.detail, /qc_failed/);
    await mustAct(p, u.tech, code, 'qc', { passed: true, material: 'PreciControl level 2' });
    const back = await mustAct(p, u.director, code, 'return-to-service', verification);
    assert.deepEqual([back.state, back.reasons, back.usable], ['in_service', [], true]);
    await mustAnalysisAct(p, u.tech, accession, second, 'result', result(code));
  });

  it('maintenance keeps it out of service until finished and verified; retired it takes nothing more', async () => {
    const code = instrumentCode();
    await inService(p, u, code, inSeconds(3600));
    const planned = await mustAct(p, u.qa, code, 'maintenance-plans', { description: 'Annual preventive maintenance', dueAt: inSeconds(86_400) });
    const planId = planned.maintenancePlans[0].id;
    const started = await mustAct(p, u.tech, code, 'maintenance/start', { description: 'Annual preventive maintenance', planId });
    assert.deepEqual([started.state, started.reasons], ['out_of_service', ['maintenance']]);
    assert.equal((await act(p, u.qa, code, 'return-to-service', verification)).status, 409);
    const finished = await mustAct(p, u.tech, code, 'maintenance/finish', { outcome: 'Filters replaced, probe aligned' });
    assert.deepEqual([finished.state, finished.reasons], ['out_of_service', []]);
    assert.notEqual(finished.maintenancePlans[0].doneAt, null);
    assert.equal((await mustAct(p, u.qa, code, 'return-to-service', verification)).state, 'in_service');
    const retired = await mustAct(p, u.qa, code, 'retire', { reason: 'Replaced by a newer analyser' });
    assert.equal(retired.state, 'retired');
    assert.equal((await act(p, u.tech, code, 'qc', { passed: true, material: 'x' })).status, 409);
    const kinds = (await read(p, u.tech, code)).events.map((e: { kind: string }) => e.kind);
    assert.deepEqual(kinds.slice(0, 5), ['retired', 'returned_to_service', 'maintenance_finished', 'maintenance_started', 'maintenance_planned']);
  });

  it('refuses bad input with problem+json and writes nothing', async () => {
    const code = instrumentCode();
    await register(p, u.qa, code);
    assert.equal((await p.api('POST', '/api/v1/instruments', { key: u.qa.apiKey, body: { code } })).status, 400);
    const dup = await p.api('POST', '/api/v1/instruments', {
      key: u.qa.apiKey,
      body: { code, name: 'x', manufacturer: 'x', model: 'x', serialNumber: 'x', location: 'x' },
    });
    assert.equal(dup.status, 409);
    assert.equal((await p.api('POST', '/api/v1/instruments', { key: u.tech.apiKey, body: { code: instrumentCode(), name: 'x', manufacturer: 'x', model: 'x', serialNumber: 'x', location: 'x' } })).status, 403);
    assert.equal((await p.api('GET', '/api/v1/instruments/NO-SUCH-ONE', { key: u.tech.apiKey })).status, 404);

    const backwards = { ...certificate(u.tech, u.qa, inSeconds(3600)), validTo: new Date(Date.now() - 3_600_000).toISOString() };
    const invalid = await act(p, u.qa, code, 'calibrations', backwards);
    assert.equal(invalid.status, 422);
    assert.equal(invalid.headers.get('content-type')?.startsWith('application/problem+json'), true);
    assert.equal((await act(p, u.qa, code, 'calibrations', certificate(u.qa, u.qa, inSeconds(3600)))).status, 403);
    const wrongPassword = certificate(u.tech, u.qa, inSeconds(3600));
    wrongPassword.signature.password = 'not-the-password';
    assert.equal((await act(p, u.qa, code, 'calibrations', wrongPassword)).status, 403);
    assert.equal((await act(p, u.tech, code, 'calibrations', certificate(u.tech2, u.tech, inSeconds(3600)))).status, 403);
    // Commissioning: no certificate yet, so not into service even with a verification record.
    assert.equal((await act(p, u.qa, code, 'return-to-service', verification)).status, 409);
    const view = await read(p, u.tech, code);
    assert.deepEqual([view.state, view.calibrations, view.events], ['commissioning', [], []]);
    assert.equal((await testEnv().db('signatures').where({ entity_type: 'instrument', entity_id: code })).length, 0);
  });

  it('lists instruments with status labels and calibrations due, a keyset page at a time', async () => {
    const soon = instrumentCode();
    const later = instrumentCode();
    await inService(p, u, soon, inSeconds(5 * 86_400), { location: 'Haematology' });
    await inService(p, u, later, inSeconds(90 * 86_400));
    const due = await p.api('GET', '/api/v1/instruments/calibrations-due?days=30&limit=200', { key: u.tech.apiKey });
    assert.equal(due.status, 200);
    const codes = due.body.items.map((i: { code: string }) => i.code);
    assert.ok(codes.includes(soon));
    assert.ok(!codes.includes(later));

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { status: number; body: { items: { code: string; statusLabel: string }[]; nextCursor: string | null } } = await p.api(
        'GET',
        `/api/v1/instruments?state=in_service&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        { key: u.tech.apiKey },
      );
      assert.equal(res.status, 200);
      assert.ok(res.body.items.length <= 2);
      for (const i of res.body.items) assert.equal(i.statusLabel, 'in service');
      seen.push(...res.body.items.map((i) => i.code));
      cursor = res.body.nextCursor;
    } while (cursor);
    assert.equal(new Set(seen).size, seen.length);
    assert.ok(seen.includes(soon) && seen.includes(later));
    assert.equal((await p.api('GET', '/api/v1/instruments?cursor=bogus', { key: u.tech.apiKey })).status, 400);
  });

  it('answered each request above as the OpenAPI document declares, successes and refusals alike', async () => {
    const doc = (await p.api('GET', '/api/v1/openapi.json')).body;
    const { drifts, checked } = driftsFrom(doc, recorder.exchanges);
    assert.deepEqual(drifts, [], 'answers that differ from the document');
    assert.ok(checked.size >= 15, `${checked.size} operation and status pairs checked: ${[...checked].join(', ')}`);
  });
});
