import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { renderReportPdf } from '../../activities/report-pdf';
import { contentHashOf } from '../../common/capa-hash';
import type { ReportContent } from '../../db/reports';
import { pdfText } from '../exports/support';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { analysisUrl, labPlatform, mustAnalysisAct, routedSample, testCode } from '../results/support';
import { assembled, assembledAndReleased, pdfOf, problem, release, reportUrl, sha256, verifiedResult } from './support';

describe("reports: the sample's ordering provider is told of each released version and reads the reports", function () {
  this.timeout(180_000);
  const lab = labPlatform();
  let c: Record<'provider' | 'successor', TestUser>;
  before(async () => {
    c = await makeUsers({ provider: ['clinician'], successor: ['clinician'] });
  });

  /** A sample routed for a test of its own, naming this ordering provider (users of this file: on no care team). */
  const sampleOrderedBy = async (provider: TestUser) => {
    const test = await testCode();
    const accession = await routedSample(lab.p, lab.u.doc, lab.u.tech, [test], {}, { orderingProvider: provider.username });
    return { test, accession };
  };
  const noticesOf = (user: TestUser, key: string) =>
    testEnv().db('notifications').where({ user_id: user.actor.userId, idempotency_key: key });
  const emailsOf = (user: TestUser, key: string) =>
    testEnv()
      .db('email_outbox')
      .where({ idempotency_key: `${key}:${user.actor.userId}` });
  const emailSent = (user: TestUser, key: string) =>
    waitFor(async () => (await emailsOf(user, key).first('state'))?.state === 'sent', `the email ${key} to ${user.username} sent`);
  const reads = (user: TestUser, reportId: string, outcome: 'read' | 'denied') =>
    testEnv()
      .db('phi_access_events')
      .where({ username: user.username, outcome })
      .whereRaw('? = any(record_ids)', [reportId])
      .pluck('record_kind');
  const get = (user: TestUser, url: string) => lab.p.api('GET', url, { key: user.apiKey });

  it('tells the provider of a release in-app and by email, lets them read it as a PHI access, and records it on the version', async () => {
    const { p, u } = lab;
    const { db } = testEnv();
    const { test, accession } = await sampleOrderedBy(c.provider);
    await verifiedResult(p, u, accession, test, 4.2);
    await assembled(p, u.director, accession);
    // Before its release the provider, like the submitter, sees nothing of it.
    const draft = await get(c.provider, reportUrl(accession, 1));
    assert.equal(draft.status, 409, JSON.stringify(draft.body));
    assert.equal(draft.body.type, problem('report-not-released'));
    assert.deepEqual((await get(c.provider, reportUrl(accession))).body, { items: [] });

    const released = await release(p, u.director, accession, 1);
    assert.equal(released.status, 200, JSON.stringify(released.body));
    const workflowId = `report:${accession}:v1`;
    const key = `report-released:${workflowId}`;
    const [notice] = await noticesOf(c.provider, key);
    assert.equal(notice?.kind, 'report.released');
    assert.match(notice.link, new RegExp(`/samples/${accession}/reports/v1$`));
    await emailSent(c.provider, key);
    await emailSent(u.doc, key);

    const row = await db('reports').where({ workflow_id: workflowId }).first('id', 'ordering_provider_id');
    assert.equal(row.ordering_provider_id, c.provider.actor.userId, 'the version records the provider it was delivered to');
    const audit = await db('audit_events')
      .where({ entity_type: 'report', entity_id: workflowId, action: 'report.released' })
      .first('details');
    assert.deepEqual(audit.details.deliveredTo, { submitter: u.doc.actor.userId, orderingProvider: c.provider.actor.userId });

    const view = await get(c.provider, reportUrl(accession, 1));
    assert.equal(view.status, 200, JSON.stringify(view.body));
    assert.equal(view.body.state, 'released');
    const list = await get(c.provider, reportUrl(accession));
    assert.deepEqual(
      list.body.items.map((r: { version: number }) => r.version),
      [1],
    );
    const pdf = await pdfOf(p, c.provider, accession, 1);
    assert.equal(pdf.status, 200);
    assert.equal(sha256(pdf.bytes), released.body.pdfSha256);
    assert.deepEqual((await reads(c.provider, row.id, 'read')).sort(), ['report', 'report', 'report_list']);
  });

  it('a submitter who is also the ordering provider is told once', async () => {
    const { p, u } = lab;
    const { test, accession } = await sampleOrderedBy(u.doc);
    await verifiedResult(p, u, accession, test, 4.2);
    await assembledAndReleased(p, u.director, accession);
    const key = `report-released:report:${accession}:v1`;
    await emailSent(u.doc, key);
    assert.equal((await noticesOf(u.doc, key)).length, 1);
    assert.equal((await testEnv().db('email_outbox').where('idempotency_key', 'like', `${key}:%`)).length, 1, 'one email in all');
  });

  it('follows the current provider; a replaced provider keeps the versions delivered to them and is neither told of nor reads a later one', async () => {
    const { p, u } = lab;
    const { db } = testEnv();
    const { test, accession } = await sampleOrderedBy(c.provider);
    await verifiedResult(p, u, accession, test, 4.2);
    await assembledAndReleased(p, u.director, accession);
    const v1Key = `report-released:report:${accession}:v1`;
    await emailSent(c.provider, v1Key);

    const put = await p.api('PUT', `/api/v1/samples/${accession}/ordering-provider`, {
      key: u.tech.apiKey,
      body: { orderingProvider: c.successor.username, reason: 'The ward named the attending physician' },
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    // The new provider reads the versions released before the change: access follows the sample's provider.
    assert.equal((await get(c.successor, reportUrl(accession, 1))).status, 200);
    // The former provider still reads what was delivered to them, and the notice already sent stays.
    assert.equal((await get(c.provider, reportUrl(accession, 1))).status, 200);
    assert.equal((await noticesOf(c.provider, v1Key)).length, 1);

    const corrected = await p.api('POST', reportUrl(accession, 1, 'correct'), {
      key: u.director.apiKey,
      body: { reason: 'Ordering physician corrected on the requisition' },
    });
    assert.equal(corrected.status, 202, JSON.stringify(corrected.body));
    await assembledAndReleased(p, u.director, accession, 2);
    const v2Key = `report-released:report:${accession}:v2`;
    const [notice] = await noticesOf(c.successor, v2Key);
    assert.equal(notice?.kind, 'report.corrected');
    await emailSent(c.successor, v2Key);
    assert.deepEqual(await noticesOf(c.provider, v2Key), [], 'the former provider is not told of v2');
    assert.deepEqual(await emailsOf(c.provider, v2Key), []);
    const v2 = await db('reports').where({ accession, version: 2 }).first('id', 'ordering_provider_id');
    assert.equal(v2.ordering_provider_id, c.successor.actor.userId);

    // v2 is the successor's to read, not the former provider's: 403 (a denied PHI access), and the list shows v1 only.
    assert.equal((await get(c.successor, reportUrl(accession, 2))).status, 200);
    assert.equal((await pdfOf(p, c.successor, accession, 2)).status, 200);
    const refused = await get(c.provider, reportUrl(accession, 2));
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
    assert.equal(refused.body.type, problem('forbidden'));
    assert.equal((await pdfOf(p, c.provider, accession, 2)).status, 403);
    assert.deepEqual(await reads(c.provider, v2.id, 'denied'), ['report', 'report']);
    const list = await get(c.provider, reportUrl(accession));
    assert.equal(list.status, 200);
    assert.deepEqual(
      list.body.items.map((r: { version: number }) => r.version),
      [1],
    );
    assert.deepEqual(await reads(c.provider, v2.id, 'read'), [], 'v2 was never shown to the former provider');
    assert.deepEqual(
      (await get(c.successor, reportUrl(accession))).body.items.map((r: { version: number }) => r.version),
      [1, 2],
    );
  });
  it("lets the current ordering provider read the sample's analyses as the submitter does, each read a PHI access event; a replaced provider is refused, and logged", async () => {
    const { p, u } = lab;
    const { db } = testEnv();
    const who = await makeUsers({ attending: ['clinician'], resident: ['clinician'] });
    const { test, accession } = await sampleOrderedBy(who.attending);
    // An entered value, not yet verified: the provider is shown what the submitter is shown, no more.
    await mustAnalysisAct(p, u.tech, accession, test, 'result', { kind: 'numeric', value: 5.1, unit: 'mmol/L', performedBy: 'bench 3' });
    const listUrl = `/api/v1/samples/${accession}/analyses`;
    const workflowId = `analysis:${accession}:${test}`;
    const events = (user: TestUser) =>
      db('phi_access_events').where({ user_id: user.actor.userId }).orderBy('occurred_at').select('record_kind', 'record_ids', 'outcome', 'route');

    const list = await get(who.attending, listUrl);
    assert.equal(list.status, 200, JSON.stringify(list.body));
    assert.deepEqual(list.body, (await get(u.doc, listUrl)).body, "the provider's list is the submitter's");
    const one = await get(who.attending, analysisUrl(accession, test));
    assert.equal(one.status, 200, JSON.stringify(one.body));
    assert.deepEqual(one.body, (await get(u.doc, analysisUrl(accession, test))).body, "the provider's view is the submitter's");
    assert.equal(one.body.result.value, 5.1);
    assert.deepEqual(await events(who.attending), [
      { record_kind: 'analysis_list', record_ids: [workflowId], outcome: 'read', route: '/api/v1/samples/:accession/analyses' },
      { record_kind: 'analysis', record_ids: [workflowId], outcome: 'read', route: '/api/v1/samples/:accession/analyses/:test' },
    ]);

    const put = await p.api('PUT', `/api/v1/samples/${accession}/ordering-provider`, {
      key: u.tech.apiKey,
      body: { orderingProvider: who.resident.username, reason: 'The ward named the attending physician' },
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    // The provider named now reads them; the one replaced reads them no more, and each refusal is logged as denied.
    assert.equal((await get(who.resident, analysisUrl(accession, test))).status, 200);
    for (const url of [listUrl, analysisUrl(accession, test)]) {
      const refused = await get(who.attending, url);
      assert.equal(refused.status, 403, JSON.stringify(refused.body));
      assert.equal(refused.body.type, problem('forbidden'));
      assert.equal(refused.body.result, undefined);
    }
    assert.deepEqual((await events(who.attending)).slice(2), [
      { record_kind: 'analysis_list', record_ids: [workflowId], outcome: 'denied', route: '/api/v1/samples/:accession/analyses' },
      { record_kind: 'analysis', record_ids: [workflowId], outcome: 'denied', route: '/api/v1/samples/:accession/analyses/:test' },
    ]);
  });

  it('names the ordering provider the version is delivered to on the report and its PDF; a released v1 stays byte-identical when the provider changes', async () => {
    const { p, u } = lab;
    const { db } = testEnv();
    const who = await makeUsers({ attending: ['clinician'], resident: ['clinician'] });
    const { test, accession } = await sampleOrderedBy(who.attending);
    await verifiedResult(p, u, accession, test, 4.2);
    const draft = await assembled(p, u.director, accession);
    assert.equal(draft.content.sample.orderingProvider, who.attending.actor.printedName);
    const released = await release(p, u.director, accession, 1);
    assert.equal(released.status, 200, JSON.stringify(released.body));
    const v1 = (await get(u.director, reportUrl(accession, 1))).body;
    assert.equal(v1.content.sample.orderingProvider, who.attending.actor.printedName);
    // What the lab director signed covers the provider: the content's hash is the one signed, recomputed from the content.
    assert.equal(contentHashOf(v1.content), v1.contentHash);
    const pdf1 = await pdfOf(p, u.director, accession, 1);
    assert.match(await pdfText(pdf1.bytes), new RegExp(`Ordering provider: ${who.attending.actor.printedName}`));
    const stored1 = await db('reports').where({ accession, version: 1 }).first('content', 'content_hash', 'pdf_sha256', 'ordering_provider_id');
    assert.equal(stored1.ordering_provider_id, who.attending.actor.userId, 'the provider named is the one delivered to');

    const put = await p.api('PUT', `/api/v1/samples/${accession}/ordering-provider`, {
      key: u.tech.apiKey,
      body: { orderingProvider: who.resident.username, reason: 'The ward named the attending physician' },
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    // v1 as released, byte for byte: its content, the hash signed, its PDF.
    const after = (await get(u.director, reportUrl(accession, 1))).body;
    assert.deepEqual(after.content, v1.content);
    assert.equal(after.contentHash, v1.contentHash);
    assert.equal(contentHashOf(after.content), after.contentHash);
    const pdfAfter = await pdfOf(p, u.director, accession, 1);
    assert.ok(pdfAfter.bytes.equals(pdf1.bytes));
    assert.equal(sha256(pdfAfter.bytes), released.body.pdfSha256);
    assert.deepEqual(await db('reports').where({ accession, version: 1 }).first('content', 'content_hash', 'pdf_sha256', 'ordering_provider_id'), stored1);

    // A correction is assembled anew: it names the provider it is delivered to now.
    const corrected = await p.api('POST', reportUrl(accession, 1, 'correct'), {
      key: u.director.apiKey,
      body: { reason: 'Ordering physician corrected on the requisition' },
    });
    assert.equal(corrected.status, 202, JSON.stringify(corrected.body));
    await assembledAndReleased(p, u.director, accession, 2);
    const v2 = (await get(u.director, reportUrl(accession, 2))).body;
    assert.equal(v2.content.sample.orderingProvider, who.resident.actor.printedName);
    assert.match(await pdfText((await pdfOf(p, u.director, accession, 2)).bytes), new RegExp(`Ordering provider: ${who.resident.actor.printedName}`));
  });

  it('prints "none named" when the sample names no ordering provider', async () => {
    const { p, u } = lab;
    const test = await testCode();
    const accession = await routedSample(p, u.doc, u.tech, [test]);
    await verifiedResult(p, u, accession, test, 4.2);
    await assembledAndReleased(p, u.director, accession);
    const v1 = (await get(u.director, reportUrl(accession, 1))).body;
    assert.equal(v1.content.sample.orderingProvider, null);
    assert.match(await pdfText((await pdfOf(p, u.director, accession, 1)).bytes), /Ordering provider: none named/);
  });
  it('serves a version released before reports named the provider as it was released: its content without the field, its hash verifying, its PDF byte for byte', async () => {
    const { p, u } = lab;
    const { db } = testEnv();
    const test = await testCode();
    const accession = await routedSample(p, u.doc, u.tech, [test], {}, { orderingProvider: c.provider.username });
    // The version as the release wrote it before: content without `orderingProvider`, its hash, its PDF.
    const legacy: ReportContent = {
      patient: { name: 'Ada Lovelace', mrn: 'MRN-0042', dob: '1915-12-10', sex: null },
      sample: { accession, specimenSource: 'Serum (SERUM)', collectedAt: null, receivedAt: null, submitter: u.doc.actor.printedName },
      tests: [],
      rejections: [],
      correction: null,
    };
    const contentHash = contentHashOf(legacy);
    const signedAt = new Date().toISOString();
    const pdf = await renderReportPdf({
      content: legacy,
      version: 1,
      lab: { name: 'labflow laboratory', address: '' },
      reportDate: signedAt,
      contentHash,
      signature: { printedName: u.director.actor.printedName, username: u.director.username, meaning: 'responsibility', signedAt },
    });
    assert.doesNotMatch(await pdfText(pdf), /Ordering provider/, 'content without the field prints no provider line');
    const sample = await db('samples').where({ accession }).first('id');
    await db('reports').insert({
      workflow_id: `report:${accession}:v1`,
      sample_id: sample.id,
      accession,
      version: 1,
      state: 'released',
      content: JSON.stringify(legacy),
      content_hash: contentHash,
      pdf,
      pdf_sha256: sha256(pdf),
      signature_id: randomUUID(),
      released_by: u.director.actor.userId,
      released_at: signedAt,
      ordering_provider_id: c.provider.actor.userId,
    });

    const shown = await get(c.provider, reportUrl(accession, 1));
    assert.equal(shown.status, 200, JSON.stringify(shown.body));
    assert.deepEqual(shown.body.content, legacy);
    assert.equal(shown.body.contentHash, contentHash);
    assert.equal(contentHashOf(shown.body.content), shown.body.contentHash);
    assert.ok((await pdfOf(p, c.provider, accession, 1)).bytes.equals(pdf));
  });
});
