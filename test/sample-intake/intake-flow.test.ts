import assert from 'node:assert/strict';
import { capaStateQuery } from '../../common/capa';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { GOOD_SERUM, act, auditActions, getSample, inspected, mustAct, register, tag, waitForRow } from './support';

describe('sample intake: receipt, inspection, acceptance, aliquots, storage, routing and custody', () => {
  let p: Platform;
  let u: Record<'doc' | 'tech' | 'director' | 'clerk', TestUser>;
  before(async () => {
    p = await startPlatform();
    u = await makeUsers({ doc: ['clinician'], tech: ['lab_technician'], director: ['lab_director'], clerk: ['author'] });
  });
  after(() => p.stop());

  it('accepts a specimen that meets its criteria, splits it, stores an aliquot, routes its tests and keeps the custody trail', async () => {
    const { accession, state } = await inspected(p, u.doc, u.tech);
    assert.equal(state.state, 'inspected');
    assert.equal(state.process.inspection.passed, true, JSON.stringify(state.process.inspection));
    assert.equal(JSON.stringify(state.process).includes('Lovelace'), false, 'no patient identifier in the run');
    assert.equal((await mustAct(p, u.tech, accession, 'accept')).state, 'accepted');
    const split = await mustAct(p, u.tech, accession, 'aliquot', { volumesMl: [1, 1] });
    assert.deepEqual(
      split.aliquots.map((a: { accession: string }) => a.accession),
      [`${accession}-A1`, `${accession}-A2`],
    );
    const stored = await mustAct(p, u.tech, accession, 'store', {
      piece: `${accession}-A2`,
      freezer: `F-${tag()}`,
      rack: 'R1',
      box: 'B1',
      position: 'A1',
    });
    assert.equal(stored.state, 'stored');
    assert.equal(stored.storage[0].piece, `${accession}-A2`);
    const routed = await mustAct(p, u.tech, accession, 'route', {
      tests: [
        { test: 'CMP', piece: `${accession}-A1` },
        { test: 'TSH', piece: `${accession}-A1` },
      ],
    });
    assert.deepEqual(
      routed.routes.map((r: { test: string; work_queue: string }) => `${r.test}:${r.work_queue}`),
      ['CMP:chemistry', 'TSH:immunoassay'],
    );
    const moved = await p.api('POST', `/api/v1/samples/${accession}/custody`, {
      key: u.tech.apiKey,
      body: { piece: `${accession}-A1`, event: 'handoff', from: 'accessioning bench', to: 'chemistry analyser 2', condition: 'intact' },
    });
    assert.equal(moved.status, 201, JSON.stringify(moved.body));
    const trail = (await p.api('GET', `/api/v1/samples/${accession}/custody`, { key: u.doc.apiKey })).body.items;
    assert.deepEqual(
      trail.map((e: { event: string; accession: string }) => `${e.event}:${e.accession.replace(accession, '')}`),
      ['received:', 'accessioned:', 'aliquoted:-A1', 'aliquoted:-A2', 'stored:-A2', 'routed:-A1', 'routed:-A1', 'handoff:-A1'],
    );
    assert.equal(trail[0].actor, u.tech.username);
    assert.equal(trail[0].to, 'Central receiving');
    const list = await p.api('GET', `/api/v1/samples?state=routed&sampleType=SERUM&submitter=${u.doc.username}`, { key: u.doc.apiKey });
    assert.deepEqual(
      list.body.items.map((i: { accession: string }) => i.accession),
      [accession],
    );
  });

  it('refuses to accept a specimen that fails a criterion and lets only the lab director accept it with a signed deviation', async () => {
    const { accession, state } = await inspected(p, u.doc, u.tech, {}, { hemolyzed: true });
    assert.equal(state.process.inspection.passed, false);
    const refused = await act(p, u.tech, accession, 'accept');
    assert.equal(refused.status, 422, JSON.stringify(refused.body));
    assert.match(refused.body.detail, /hemolysis/);
    const hash = state.process.inspection.contentHash;
    const byTech = await act(p, u.tech, accession, 'accept-with-deviation', {
      comment: 'Mild hemolysis',
      signature: { password: u.tech.password, meaning: 'approval', contentHash: hash },
    });
    assert.equal(byTech.status, 403);
    const wrongPassword = await act(p, u.director, accession, 'accept-with-deviation', {
      comment: 'x',
      signature: { password: 'nope', meaning: 'approval', contentHash: hash },
    });
    assert.equal(wrongPassword.status, 403);
    const stale = await act(p, u.director, accession, 'accept-with-deviation', {
      comment: 'x',
      signature: { password: u.director.password, meaning: 'approval', contentHash: 'a'.repeat(64) },
    });
    assert.equal(stale.status, 409);
    const ok = await mustAct(p, u.director, accession, 'accept-with-deviation', {
      comment: 'Mild hemolysis; potassium to be reported with a comment',
      signature: { password: u.director.password, meaning: 'approval', contentHash: hash },
    });
    assert.equal(ok.state, 'accepted_with_deviation');
    assert.equal(ok.deviationComment, 'Mild hemolysis; potassium to be reported with a comment');
    assert.equal(ok.signatures.length, 1);
    assert.equal(ok.signatures[0].content_hash, hash);
    assert.equal(ok.signatures[0].username, u.director.username);
    const event = await testEnv()
      .db('audit_events')
      .where({ entity_type: 'sample', entity_id: accession, action: 'sample.accepted_with_deviation' })
      .first('details');
    assert.equal(event.details.signature.contentHash, hash);
  });

  it('rejects a specimen: condition and disposition recorded, aliquots cascade, storage freed, submitter notified, recollection requested', async () => {
    const { accession } = await inspected(p, u.doc, u.tech);
    await mustAct(p, u.tech, accession, 'accept');
    await mustAct(p, u.tech, accession, 'aliquot', { volumesMl: [1] });
    const freezer = `F-${tag()}`;
    await mustAct(p, u.tech, accession, 'store', { piece: `${accession}-A1`, freezer, rack: 'R', box: 'B', position: 'P1' });
    const rejected = await mustAct(p, u.tech, accession, 'reject', {
      code: 'RN',
      condition: 'Visible contamination at the cap',
      disposition: 'discarded',
    });
    assert.equal(rejected.state, 'rejected');
    assert.deepEqual(
      rejected.aliquots.map((a: { state: string }) => a.state),
      ['rejected'],
    );
    assert.deepEqual(rejected.storage, [], 'the aliquot’s position is free again');
    assert.deepEqual(rejected.rejection, { code: 'RN', condition: 'Visible contamination at the cap', disposition: 'discarded' });
    const notes = await p.api('GET', '/api/v1/notifications', { key: u.doc.apiKey });
    assert.ok(notes.body.items.some((n: { kind: string; title: string }) => n.kind === 'sample.rejected' && n.title.includes(accession)));
    await waitFor(() => testEnv().mails.find((m) => m.subject?.includes(accession) && m.subject.includes('rejected')), 'rejection email');
    const recollection = await testEnv().db('sample_recollection_requests').where({ accession }).first();
    assert.deepEqual(recollection.tests, ['CMP', 'TSH']);
    const tasks = await p.api('GET', '/api/v1/tasks?mine=1&state=open&entityType=sample&limit=200', { key: u.doc.apiKey });
    assert.ok(
      tasks.body.items.some((t: { kind: string; entity_id: string }) => t.kind === 'sample.recollection' && t.entity_id === accession),
    );
    const trail = (await p.api('GET', `/api/v1/samples/${accession}/custody`, { key: u.doc.apiKey })).body.items;
    assert.deepEqual(
      trail.filter((e: { event: string }) => e.event === 'disposed').map((e: { accession: string }) => e.accession),
      [accession, `${accession}-A1`],
    );
    const reuse = await mustAct(p, u.tech, (await inspected(p, u.doc, u.tech)).accession, 'accept');
    assert.equal((await mustAct(p, u.tech, reuse.accession, 'store', { freezer, rack: 'R', box: 'B', position: 'P1' })).state, 'stored');
    await waitForRow(accession, 'rejected');
    assert.equal((await act(p, u.tech, accession, 'accept')).status, 409, 'a rejected sample takes no more actions');
  });

  it('rejects some requested tests only, leaving the rest to be routed', async () => {
    const { accession } = await inspected(p, u.doc, u.tech);
    await mustAct(p, u.tech, accession, 'accept');
    const partial = await mustAct(p, u.tech, accession, 'reject', {
      code: 'QS',
      condition: 'Not enough for TSH',
      disposition: 'retained',
      tests: ['TSH'],
    });
    assert.equal(partial.state, 'accepted');
    assert.deepEqual(partial.rejectedTests, ['TSH']);
    const routed = await mustAct(p, u.tech, accession, 'route');
    assert.deepEqual(
      routed.routes.map((r: { test: string }) => r.test),
      ['CMP'],
    );
  });

  it('opens a CAPA through the configured rule, and links a second qualifying rejection from the same source to it', async () => {
    // A code no other test rejects with: the rule is active on the shared database while other files reject specimens.
    const [rule] = await testEnv().db('sample_capa_rules').insert({ rejection_code: 'RP', threshold: 1, window_days: 1 }).returning('id');
    try {
      const { accession } = await inspected(p, u.doc, u.tech);
      await mustAct(p, u.tech, accession, 'reject', { code: 'RP', condition: 'No phlebotomist on the label', disposition: 'discarded' });
      const requestOf = (acc: string) => testEnv().db('sample_capa_requests').where({ source_type: 'sample', source_id: acc }).first();
      const request = await requestOf(accession);
      assert.ok(request, 'a CAPA request was recorded');
      assert.equal(request.details.code, 'RP');
      const event = await testEnv().db('audit_events').where({ entity_id: accession, action: 'sample.rejected' }).first('details');
      assert.equal(event.details.capaRequestId, request.id);

      // The sample's run takes the request up: a CAPA run exists, in triage, naming the sample.
      await waitFor(async () => (await requestOf(accession))?.state === 'started', `${accession} CAPA request started`);
      const { capa_workflow_id: capaId } = await requestOf(accession);
      assert.match(capaId, /^capa:CAPA-\d{4}-\d+$/);
      const handle = testEnv().client.workflow.getHandle(capaId);
      assert.equal((await handle.describe()).status.name, 'RUNNING');
      const named = async (acc: string) => {
        const st = await handle.query(capaStateQuery);
        return st.stage === 'triage' && st.sources.some((src) => src.type === 'sample' && src.id === acc);
      };
      await waitFor(() => named(accession), `${capaId} in triage naming ${accession}`);
      assert.ok(
        (await auditActions(accession)).includes('sample.capa_opened') || (await auditActions(accession)).includes('sample.capa_linked'),
      );

      // A second qualifying rejection from the same source links to that CAPA instead of opening another.
      const second = await inspected(p, u.doc, u.tech);
      await mustAct(p, u.tech, second.accession, 'reject', { code: 'RP', condition: 'No phlebotomist again', disposition: 'discarded' });
      await waitFor(async () => (await requestOf(second.accession))?.state === 'started', `${second.accession} CAPA request started`);
      assert.equal((await requestOf(second.accession)).capa_workflow_id, capaId);
      await waitFor(() => named(second.accession), `${capaId} naming ${second.accession}`);
      await waitFor(() => named(accession), `${capaId} still naming ${accession}`);
      assert.ok((await auditActions(second.accession)).includes('sample.capa_linked'));
    } finally {
      await testEnv().db('sample_capa_rules').where({ id: rule.id }).update({ active: false });
    }
  });

  it('cancels a sample with a reason and reinstates it where it was', async () => {
    const { accession } = await inspected(p, u.doc, u.tech);
    const cancelled = await mustAct(p, u.doc, accession, 'cancel', { reason: 'Ordered on the wrong patient encounter' });
    assert.equal(cancelled.state, 'cancelled');
    assert.equal((await act(p, u.tech, accession, 'accept')).status, 409);
    const back = await mustAct(p, u.tech, accession, 'reinstate', { reason: 'Encounter corrected' });
    assert.equal(back.state, 'inspected');
    assert.deepEqual((await auditActions(accession)).slice(-2), ['sample.cancelled', 'sample.reinstated']);
  });

  describe('bad input', () => {
    it('answers 409 with the existing accession when the same tube is scanned twice', async () => {
      const barcode = `BC-${tag()}`;
      const first = await register(p, u.doc, { barcode });
      const again = await p.api('POST', '/api/v1/samples', {
        key: u.doc.apiKey,
        body: { sampleType: 'SERUM', tests: ['CMP'], patient: {}, barcode },
      });
      assert.equal(again.status, 409);
      assert.equal(again.body.accession, first.accession);
      assert.equal((await testEnv().db('samples').where({ barcode })).length, 1);
    });

    it('refuses a collection time after receipt, and one in the future', async () => {
      const { accession } = await register(p, u.doc);
      const late = await act(p, u.tech, accession, 'receive', {
        location: 'Bench',
        collectedAt: new Date(Date.now() + 3_600_000).toISOString(),
      });
      assert.equal(late.status, 422);
      assert.equal(late.body.type, 'urn:labflow:problem:collection-after-receipt');
      const future = await p.api('POST', '/api/v1/samples', {
        key: u.doc.apiKey,
        body: { sampleType: 'SERUM', tests: ['CMP'], patient: {}, collectedAt: new Date(Date.now() + 60_000).toISOString() },
      });
      assert.equal(future.status, 422);
      assert.equal((await getSample(p, u.tech, accession)).state, 'expected');
    });

    it('fails the identifier criterion when the label carries one identifier only', async () => {
      const { state } = await inspected(p, u.doc, u.tech, {}, { identifiers: [{ type: 'mrn', value: 'MRN-0042' }] });
      const check = state.process.inspection.checks.find((c: { criterion: string }) => c.criterion === 'identifiers');
      assert.equal(check.ok, false);
      assert.equal(check.code, 'RE');
      const mismatch = await inspected(
        p,
        u.doc,
        u.tech,
        {},
        {
          identifiers: [
            { type: 'name', value: 'Ada Byron' },
            { type: 'mrn', value: 'MRN-0042' },
          ],
        },
      );
      assert.equal(mismatch.state.process.inspection.checks[0].code, 'RI');
      assert.equal(mismatch.state.process.inspection.checks[0].ok, false);
    });

    it('answers 422 for an unknown sample type or a test that does not run on the type', async () => {
      const before = await testEnv().db('samples').count({ n: '*' }).first();
      const type = await p.api('POST', '/api/v1/samples', { key: u.doc.apiKey, body: { sampleType: 'BLOOD_X', tests: [], patient: {} } });
      assert.equal(type.status, 422);
      assert.equal(type.body.errors[0].field, 'body.sampleType');
      const test = await p.api('POST', '/api/v1/samples', {
        key: u.doc.apiKey,
        body: { sampleType: 'SERUM', tests: ['CBC'], patient: {} },
      });
      assert.equal(test.status, 422);
      assert.equal(test.body.errors[0].field, 'body.tests.0');
      assert.deepEqual(await testEnv().db('samples').count({ n: '*' }).first(), before, 'nothing registered');
    });

    it('answers 409 when a storage position is already taken', async () => {
      const freezer = `F-${tag()}`;
      const a = await inspected(p, u.doc, u.tech);
      const b = await inspected(p, u.doc, u.tech);
      await mustAct(p, u.tech, a.accession, 'accept');
      await mustAct(p, u.tech, b.accession, 'accept');
      await mustAct(p, u.tech, a.accession, 'store', { freezer, rack: 'R', box: 'B', position: 'A1' });
      const taken = await act(p, u.tech, b.accession, 'store', { freezer, rack: 'R', box: 'B', position: 'A1' });
      assert.equal(taken.status, 409);
      assert.match(taken.body.detail, new RegExp(a.accession));
      assert.equal((await getSample(p, u.tech, b.accession)).state, 'accepted');
    });

    it('gives every one of many racing registrations its own accession number', async () => {
      const results = await Promise.all(Array.from({ length: 20 }, () => register(p, u.doc)));
      assert.equal(new Set(results.map((r) => r.accession)).size, 20);
    });

    it('refuses actions from people without a lab role and out-of-order actions', async () => {
      const { accession } = await register(p, u.doc);
      assert.equal((await act(p, u.clerk, accession, 'receive', { location: 'x' })).status, 403);
      assert.equal((await act(p, u.tech, accession, 'accept')).status, 409);
      assert.equal((await act(p, u.tech, accession, 'inspect', GOOD_SERUM)).status, 409);
      assert.equal((await p.api('GET', '/api/v1/samples/ACC-99999999', { key: u.tech.apiKey })).status, 404);
      assert.equal((await act(p, u.tech, accession, 'receive', { location: '' })).status, 400);
    });
  });
});
