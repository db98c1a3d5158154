import assert from 'node:assert/strict';
import { pdfText } from '../exports/support';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { mustAct, tag } from '../sample-intake/support';
import { addRanges, labUsers, mustAnalysisAct, routedSample, sign, testCode } from '../results/support';
import { assembled, pdfOf, problem, release, reportUrl, routedForPatient, runClosed, sha256, verifiedResult } from './support';

type Users = Record<'doc' | 'tech' | 'tech2' | 'tech3' | 'director', TestUser>;

describe('reports: a sample report from verified tests to a released, signed PDF/A and its corrections', function () {
  this.timeout(180_000);
  let p: Platform;
  let u: Users;
  let others: Record<'stranger' | 'teamDoc', TestUser>;
  before(async () => {
    p = await startPlatform();
    u = await labUsers();
    others = await makeUsers({ stranger: ['clinician'], teamdoc: ['clinician'] }).then((o) => ({
      stranger: o.stranger,
      teamDoc: o.teamdoc,
    }));
  });
  after(() => p.stop());

  const userId = async (user: TestUser) => (await testEnv().db('users').where({ username: user.username }).first('id')).id as string;
  const sampleState = async (accession: string) => (await testEnv().db('samples').where({ accession }).first('state')).state as string;

  it('is refused while a test is unverified, is released once with a signature, and carries what 42 CFR 493.1291(c) asks', async () => {
    const { db } = testEnv();
    const mrn = `MRN-${tag()}`;
    const [a, b] = [await testCode(), await testCode()];
    const accession = await routedForPatient(p, u.doc, u.tech, [a, b], mrn);
    // A patient record under the same MRN: its care team reads the sample's reports.
    const [patient] = await db('patients')
      .insert({ given_name: 'Ada', family_name: 'Lovelace', date_of_birth: '1915-12-10', mrn, created_by: await userId(u.doc) })
      .returning('id');
    await db('patient_clinicians').insert({ patient_id: patient.id, user_id: await userId(others.teamDoc), added_by: await userId(u.doc) });

    await verifiedResult(p, u, accession, a, 6.2);
    // One test verified: no report yet, and a release is refused naming the test that is not.
    const early = await p.api('GET', reportUrl(accession, 1), { key: u.director.apiKey });
    assert.equal(early.status, 404, 'no report to read yet');
    assert.equal(early.body.type, problem('not-found'));
    const blocked = await p.api('POST', reportUrl(accession, 1, 'release'), {
      key: u.director.apiKey,
      body: { signature: { password: u.director.password, meaning: 'responsibility', contentHash: 'a'.repeat(64) } },
    });
    assert.equal(blocked.status, 409, JSON.stringify(blocked.body));
    assert.equal(blocked.body.type, problem('tests-unverified'));
    assert.deepEqual(blocked.body.tests, [{ test: b, state: 'pending' }]);
    assert.equal((await db('reports').where({ accession })).length, 0);

    // The last verification starts the report run, which assembles v1 awaiting the lab director.
    await verifiedResult(p, u, accession, b, 4.0);
    const v1 = await assembled(p, u.director, accession);
    assert.equal(v1.state, 'awaiting_release');
    assert.deepEqual(v1.unverified, []);
    assert.equal(v1.content.patient.name, 'Ada Lovelace');
    assert.ok(
      await db('notifications')
        .where({ user_id: await userId(u.director), kind: 'report.ready' })
        .where('link', 'like', `%${accession}%`)
        .first(),
      'the lab director is told a report is ready',
    );

    // A retest after assembly makes a test unverified again: the release is refused until it is verified.
    await mustAnalysisAct(p, u.tech, accession, b, 'retest');
    await waitFor(
      async () => (await db('analyses').where({ accession, test_code: b, retest_number: 2 }).first('state'))?.state === 'pending',
      'the retest',
    );
    const again = await release(p, u.director, accession, 1);
    assert.equal(again.status, 409, JSON.stringify(again.body));
    assert.equal(again.body.type, problem('tests-unverified'));
    assert.equal((await db('reports').where({ accession }).first('state')).state, 'awaiting_release');
    await verifiedResult(p, u, accession, b, 4.4);

    // Refusals that write nothing: a technician, the wrong meaning, a stale hash, a wrong password.
    assert.equal((await release(p, u.tech, accession, 1)).status, 403);
    const { contentHash } = (await p.api('GET', reportUrl(accession, 1), { key: u.director.apiKey })).body;
    const signed = (over: Record<string, unknown>) => ({
      signature: { password: u.director.password, meaning: 'responsibility', contentHash, ...over },
    });
    const wrongMeaning = await p.api('POST', reportUrl(accession, 1, 'release'), {
      key: u.director.apiKey,
      body: signed({ meaning: 'approval' }),
    });
    assert.equal(wrongMeaning.status, 422);
    const stale = await p.api('POST', reportUrl(accession, 1, 'release'), {
      key: u.director.apiKey,
      body: signed({ contentHash: 'b'.repeat(64) }),
    });
    assert.equal(stale.status, 409);
    assert.equal(stale.body.type, problem('stale-content-hash'));
    const wrongPassword = await p.api('POST', reportUrl(accession, 1, 'release'), {
      key: u.director.apiKey,
      body: signed({ password: 'not-it' }),
    });
    assert.equal(wrongPassword.status, 403);
    assert.equal((await db('reports').where({ accession }).first('state')).state, 'awaiting_release');
    // Before the release the submitter and the care team see nothing of it: results are issued by the release.
    const draft = await p.api('GET', reportUrl(accession, 1), { key: u.doc.apiKey });
    assert.equal(draft.status, 409, JSON.stringify(draft.body));
    assert.equal(draft.body.type, problem('report-not-released'));
    assert.deepEqual((await p.api('GET', reportUrl(accession), { key: others.teamDoc.apiKey })).body, { items: [] });

    // The same request twice at once (one request ID): applied once, both answered alike.
    const directorReads = async () =>
      Number(
        (
          await db('phi_access_events')
            .where({ username: u.director.username, record_kind: 'report', outcome: 'read' })
            .whereRaw('? = any(record_ids)', [(await db('reports').where({ accession, version: 1 }).first('id')).id])
            .count({ n: '*' })
            .first()
        )?.n,
      );
    const readsBefore = await directorReads();
    const requestId = `rel-${tag()}-${tag()}`;
    const [first, second] = await Promise.all([
      p.api('POST', reportUrl(accession, 1, 'release'), { key: u.director.apiKey, body: { ...signed({}), requestId } }),
      p.api('POST', reportUrl(accession, 1, 'release'), { key: u.director.apiKey, body: { ...signed({}), requestId } }),
    ]);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(second.status, 200, JSON.stringify(second.body));
    assert.equal(first.body.state, 'released');
    assert.equal(first.body.pdfSha256, second.body.pdfSha256);
    const workflowId = `report:${accession}:v1`;
    assert.equal((await directorReads()) - readsBefore, 2, 'each release answer shows the content: a PHI access event');
    assert.equal((await db('signatures').where({ entity_type: 'report', entity_id: workflowId })).length, 1, 'one signature');
    assert.equal((await db('audit_events').where({ entity_type: 'report', entity_id: workflowId, action: 'report.released' })).length, 1);
    // The same request ID once more, later: the same answer; another request: 409.
    const replayed = await p.api('POST', reportUrl(accession, 1, 'release'), {
      key: u.director.apiKey,
      body: { ...signed({}), requestId },
    });
    assert.equal(replayed.status, 200);
    const secondRelease = await release(p, u.director, accession, 1);
    assert.equal(secondRelease.status, 409);
    assert.equal(secondRelease.body.type, problem('report-released'));

    // The analyses shown are released, their runs end, and the sample completes.
    for (const id of [`analysis:${accession}:${a}`, `analysis:${accession}:${b}:2`]) await runClosed(id);
    assert.deepEqual(await db('analyses').where({ accession, frozen: false }).orderBy('test_code').pluck('state'), [
      'released',
      'released',
    ]);
    await waitFor(async () => (await sampleState(accession)) === 'completed', 'the sample completed');
    await runClosed(workflowId);

    // The PDF/A: stored with its SHA-256, served byte for byte, and what 493.1291(c) requires is on it.
    const pdf = await pdfOf(p, u.doc, accession, 1);
    assert.equal(pdf.status, 200);
    assert.equal(pdf.type, 'application/pdf');
    assert.equal(sha256(pdf.bytes), first.body.pdfSha256);
    assert.equal((await db('reports').where({ workflow_id: workflowId }).first('pdf_sha256')).pdf_sha256, sha256(pdf.bytes));
    assert.match(pdf.bytes.toString('latin1'), /pdfaid:part[^0-9]*2/, 'declared PDF/A-2');
    const text = await pdfText(pdf.bytes);
    const release1 = first.body.release;
    for (const needed of [
      'Ada Lovelace',
      mrn,
      'Labflow Test Laboratory',
      '1 Test Street, Testville',
      'Report date',
      a,
      b,
      '6.2 mmol/L',
      '4.4 mmol/L',
      '3.5–5.5 mmol/L',
      'H (high)',
      'Specimen source',
      'Serum',
      `Released by ${release1.printedName}`,
      'Meaning: responsibility',
      `${release1.signedAt.slice(0, 10)} ${release1.signedAt.slice(11, 19)} UTC`,
    ]) {
      assert.ok(text.includes(needed), `the report shows ${needed}`);
    }
    assert.ok(!text.includes('4.0 mmol/L'), 'the frozen original of a retest is not reported');

    // Delivered to the submitter: in-app and email; and report.released published with IDs only.
    const docId = await userId(u.doc);
    assert.ok(
      await db('notifications')
        .where({ user_id: docId, kind: 'report.released', idempotency_key: `report-released:${workflowId}` })
        .first(),
    );
    await waitFor(
      async () =>
        (
          await db('email_outbox')
            .where({ idempotency_key: `report-released:${workflowId}:${docId}` })
            .first('state')
        )?.state === 'sent',
      'the email to the submitter sent',
    );
    const event = await db('domain_events').where({ type: 'report.released', entity_id: workflowId }).first();
    assert.equal(event.data.accession, accession);
    assert.equal(event.data.pdfSha256, first.body.pdfSha256);
    assert.ok(!JSON.stringify(event.data).includes('Lovelace') && !JSON.stringify(event.data).includes(mrn), 'IDs only');

    // Who reads: lab roles, the submitter, the care team; anyone else 403; every read and refusal a PHI access event.
    assert.equal((await pdfOf(p, others.teamDoc, accession, 1)).status, 200);
    assert.equal((await p.api('GET', reportUrl(accession), { key: u.tech.apiKey })).status, 200);
    const refused = await p.api('GET', reportUrl(accession, 1), { key: others.stranger.apiKey });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.type, problem('forbidden'));
    assert.equal((await pdfOf(p, others.stranger, accession, 1)).status, 403);
    assert.equal((await p.api('GET', reportUrl(accession, 9), { key: u.director.apiKey })).status, 404);
    const reportId = (await db('reports').where({ workflow_id: workflowId }).first('id')).id;
    const events = await db('phi_access_events').whereRaw('? = any(record_ids)', [reportId]).select('username', 'outcome', 'record_kind');
    const seen = (username: string, outcome: string) =>
      events.some((e) => e.username === username && e.outcome === outcome && e.record_kind === 'report');
    assert.ok(seen(u.doc.username, 'read') && seen(others.teamDoc.username, 'read') && seen(u.director.username, 'read'));
    assert.ok(seen(others.stranger.username, 'denied'));
    assert.ok(await db('phi_access_event_patients').where({ patient_id: patient.id }).first(), "in the patient's access log");
  });

  it('corrects a released report as v2, marked CORRECTED with its reason, leaving v1 byte-identical; a range change alters neither', async () => {
    const { db } = testEnv();
    const test = await testCode();
    const accession = await routedSample(p, u.doc, u.tech, [test]);
    await verifiedResult(p, u, accession, test, 6.2);
    await assembled(p, u.director, accession);
    const released = await release(p, u.director, accession, 1);
    assert.equal(released.status, 200, JSON.stringify(released.body));
    const v1 = await pdfOf(p, u.director, accession, 1);
    assert.equal(sha256(v1.bytes), released.body.pdfSha256);

    // The reference range changes after release.
    await addRanges(test, 'mmol/L', [{ version: 2, low: 1, high: 2 }]);

    // A correction needs the lab director and a reason; a report not released cannot be corrected.
    assert.equal((await p.api('POST', reportUrl(accession, 1, 'correct'), { key: u.director.apiKey, body: {} })).status, 400);
    assert.equal((await p.api('POST', reportUrl(accession, 1, 'correct'), { key: u.tech.apiKey, body: { reason: 'x' } })).status, 403);
    const reason = 'Specimen labelled with the wrong collection time; results unchanged';
    const corrected = await p.api('POST', reportUrl(accession, 1, 'correct'), { key: u.director.apiKey, body: { reason } });
    assert.equal(corrected.status, 202, JSON.stringify(corrected.body));
    assert.deepEqual([corrected.body.workflowId, corrected.body.version, corrected.body.corrects], [`report:${accession}:v2`, 2, 1]);
    const twice = await p.api('POST', reportUrl(accession, 1, 'correct'), { key: u.director.apiKey, body: { reason } });
    assert.equal(twice.status, 409);
    assert.equal(twice.body.type, problem('report-corrected'));

    const v2 = await waitFor(async () => {
      const r = await p.api('GET', reportUrl(accession, 2), { key: u.director.apiKey });
      return r.status === 200 && r.body.content?.tests?.length ? r.body : null;
    }, 'v2 assembled');
    assert.equal(v2.corrected, true);
    assert.deepEqual(v2.correction, { version: 1, reason });
    assert.deepEqual(
      [v2.content.tests[0].referenceRange.version, v2.content.tests[0].referenceRange.low],
      [1, 3.5],
      'the snapshot, not the new range',
    );
    const v2released = await release(p, u.director, accession, 2);
    assert.equal(v2released.status, 200, JSON.stringify(v2released.body));

    const text2 = await pdfText((await pdfOf(p, u.doc, accession, 2)).bytes);
    for (const needed of ['CORRECTED', 'replaces version 1', reason, '3.5–5.5 mmol/L', 'H (high)'])
      assert.ok(text2.includes(needed), `v2 shows ${needed}`);

    // v1: the same bytes as released, still served, and unchangeable in the database.
    const v1again = await pdfOf(p, u.doc, accession, 1);
    assert.ok(v1again.bytes.equals(v1.bytes), 'v1 byte-identical');
    assert.equal(sha256(v1again.bytes), released.body.pdfSha256);
    const text1 = await pdfText(v1again.bytes);
    assert.ok(!text1.includes('CORRECTED') && text1.includes('3.5–5.5 mmol/L'));
    const list = (await p.api('GET', reportUrl(accession), { key: u.doc.apiKey })).body.items;
    assert.deepEqual(
      list.map((r: { version: number; correctedBy: number | null; corrected: boolean }) => [r.version, r.corrected, r.correctedBy]),
      [
        [1, false, 2],
        [2, true, null],
      ],
    );
    await assert.rejects(
      db('reports')
        .where({ workflow_id: `report:${accession}:v1` })
        .update({ pdf_sha256: 'x' }),
      /never changes/,
    );

    // The same recipients are told of the correction.
    const docId = await userId(u.doc);
    assert.ok(
      await db('notifications')
        .where({ user_id: docId, kind: 'report.corrected', idempotency_key: `report-released:report:${accession}:v2` })
        .first(),
    );
    await waitFor(
      async () =>
        (
          await db('email_outbox')
            .where({ idempotency_key: `report-released:report:${accession}:v2:${docId}` })
            .first('state')
        )?.state === 'sent',
      'the correction emailed to the submitter',
    );
  });

  it('cancels the open analyses of rejected tests, reports their condition and disposition, and completes the sample', async () => {
    const { db } = testEnv();
    const [kept, rejected] = [await testCode(), await testCode()];
    const accession = await routedSample(p, u.doc, u.tech, [kept, rejected]);
    await mustAct(p, u.tech, accession, 'reject', {
      code: 'QS',
      condition: 'Only 0.2 mL left for this test',
      disposition: 'discarded',
      tests: [rejected],
    });
    await runClosed(`analysis:${accession}:${rejected}`);
    assert.equal((await db('analyses').where({ accession, test_code: rejected }).first('state')).state, 'cancelled');
    assert.equal(await sampleState(accession), 'routed', 'not complete while a test is open');

    await verifiedResult(p, u, accession, kept);
    await assembled(p, u.director, accession);
    assert.equal((await release(p, u.director, accession, 1)).status, 200);
    const text = await pdfText((await pdfOf(p, u.director, accession, 1)).bytes);
    for (const needed of [
      'Only 0.2 mL left for this test',
      'Disposition',
      'recollection requested',
      `not reported: cancelled (specimen rejected)`,
    ]) {
      assert.ok(text.includes(needed), `the report shows ${needed}`);
    }
    await waitFor(async () => (await sampleState(accession)) === 'completed', 'the sample completed');

    // A whole specimen rejected: its open analyses are cancelled and their runs end.
    const other = await testCode();
    const whole = await routedSample(p, u.doc, u.tech, [other]);
    await mustAct(p, u.tech, whole, 'reject', { code: 'RB', condition: 'Tube cracked in transit', disposition: 'discarded' });
    await runClosed(`analysis:${whole}:${other}`);
    assert.equal((await db('analyses').where({ accession: whole }).first('state')).state, 'cancelled');
  });

  it('verification by the policy still gates the report: a test verified by nobody yet keeps it from starting', async () => {
    const { db } = testEnv();
    const test = await testCode({ verificationsRequired: 2 });
    const accession = await routedSample(p, u.doc, u.tech, [test]);
    await mustAnalysisAct(p, u.tech, accession, test, 'result', { kind: 'numeric', value: 4, unit: 'mmol/L', performedBy: 'bench 3' });
    await mustAnalysisAct(p, u.tech, accession, test, 'submit');
    assert.equal((await sign(p, u.tech2, accession, test, 'verify')).status, 200);
    assert.equal((await p.api('GET', reportUrl(accession, 1), { key: u.director.apiKey })).status, 404);
    const refused = await p.api('POST', reportUrl(accession, 1, 'release'), {
      key: u.director.apiKey,
      body: { signature: { password: u.director.password, meaning: 'responsibility', contentHash: 'c'.repeat(64) } },
    });
    assert.equal(refused.body.type, problem('tests-unverified'));
    assert.deepEqual(refused.body.tests, [{ test, state: 'to_be_verified' }]);
    assert.equal((await sign(p, u.tech3, accession, test, 'verify')).status, 200);
    assert.equal((await assembled(p, u.director, accession)).state, 'awaiting_release');
    assert.equal((await db('reports').where({ accession })).length, 1);
  });
});
