import assert from 'node:assert/strict';
import { webhookSignature } from '../../api/routes/sample-intake-webhooks';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';
import { tag } from '../sample-intake/support';
import { labUsers, mustAnalysisAct, readAnalysis, routedSample, sign, testCode } from './support';

const problem = (type: string) => `urn:labflow:problem:${type}`;

describe("results an instrument reports through the signed webhook inbox", function () {
  this.timeout(120_000);
  let p: Platform;
  let u: Record<'doc' | 'tech' | 'tech2' | 'tech3' | 'director', TestUser>;
  let admin: TestUser;
  let liaison: TestUser;
  const sources: Record<'analyser' | 'lims', { name: string; secret: string }> = {} as never;
  before(async () => {
    p = await startPlatform();
    u = await labUsers();
    ({ admin, liaison } = await makeUsers({ admin: ['admin'], liaison: ['clinician'] }));
    for (const [key, contact] of [
      ['analyser', u.tech3],
      ['lims', liaison],
    ] as const) {
      const name = `${key}-${tag()}`;
      const res = await p.api('POST', '/api/v1/sample-sources', { key: admin.apiKey, body: { name, contact: contact.username } });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      sources[key] = { name, secret: res.body.secret };
    }
  });
  after(() => p.stop());

  const post = (to: { name: string; secret: string }, body: unknown) => {
    const raw = JSON.stringify(body);
    const timestamp = String(Math.floor(Date.now() / 1000));
    return p.api('POST', `/api/v1/webhooks/${to.name}`, {
      raw,
      headers: { 'x-labflow-timestamp': timestamp, 'x-labflow-signature': `sha256=${webhookSignature(to.secret, timestamp, raw)}` },
    });
  };
  const report = (accession: string, test: string, extra: Record<string, unknown> = {}) => ({
    eventId: `msg-${tag()}`,
    type: 'result.reported',
    accession,
    test,
    messageId: `MSH-${tag()}`,
    result: { kind: 'numeric', value: 7.9, unit: 'mmol/L', performedBy: 'op-114', instrument: 'COBAS-E411-02' },
    ...extra,
  });
  const entries = async (accession: string, test: string) =>
    testEnv()
      .db('analysis_entries as e')
      .join('analyses as a', 'a.id', 'e.analysis_id')
      .where({ 'a.accession': accession, 'a.test_code': test })
      .select('e.message_id', 'e.applied_at', 'e.entered_by');

  it('enters a reported value as the source contact’s entry, flags it, keeps the message ID, and takes a retry once', async () => {
    const test = await testCode();
    const accession = await routedSample(p, u.doc, u.tech, [test]);
    const body = report(accession, test);
    const res = await post(sources.analyser, body);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const shown = await readAnalysis(p, u.tech, accession, test);
    assert.equal(shown.state, 'resulted');
    assert.equal(shown.result.value, 7.9);
    assert.equal(shown.result.flag, 'critical_high');
    assert.equal(shown.result.instrument, 'COBAS-E411-02');
    assert.equal(shown.result.performedBy, 'op-114');
    assert.equal(shown.result.messageId, body.messageId);

    const again = await post(sources.analyser, body);
    assert.equal(again.status, 200);
    assert.equal(again.body.status, 'duplicate');
    const rows = await entries(accession, test);
    assert.equal(rows.length, 1, 'a retried message enters nothing twice');
    assert.equal(rows[0].entered_by, u.tech3.actor.userId);

    // The contact entered it, so the contact may not verify it; another technician may.
    await mustAnalysisAct(p, u.tech, accession, test, 'submit');
    assert.equal((await sign(p, u.tech3, accession, test, 'verify')).status, 403);
    const verified = await sign(p, u.tech2, accession, test, 'verify');
    assert.equal(verified.status, 200, JSON.stringify(verified.body));
  });

  it('refuses what it cannot enter with a 4xx the sender can act on, and records nothing', async () => {
    const test = await testCode();
    const accession = await routedSample(p, u.doc, u.tech, [test]);
    const cases: [unknown, { name: string; secret: string }, number, string | null][] = [
      [report(accession, test, { result: { kind: 'numeric', value: 7.9, unit: 'mg/dL', performedBy: 'op-114' } }), sources.analyser, 422, 'wrong-unit'],
      [report(accession, test, { result: { kind: 'coded', code: 'positive', performedBy: 'op-114' } }), sources.analyser, 422, 'wrong-result-kind'],
      [report(accession, 'NOSUCHTEST'), sources.analyser, 404, null],
      [report(accession, test), sources.lims, 422, 'source-cannot-enter-results'],
      [{ ...report(accession, test), messageId: undefined }, sources.analyser, 400, null],
    ];
    for (const [body, to, status, type] of cases) {
      const res = await post(to, body);
      assert.equal(res.status, status, JSON.stringify(res.body));
      if (type) assert.equal(res.body.type, problem(type));
    }
    assert.deepEqual(await entries(accession, test), []);
    const recorded = await testEnv()
      .db('sample_webhook_events')
      .whereIn('source', [sources.analyser.name, sources.lims.name])
      .whereRaw("payload ->> 'accession' = ?", [accession]);
    assert.deepEqual(recorded, [], 'a refused report is not in the inbox');
    assert.equal((await readAnalysis(p, u.tech, accession, test)).state, 'pending');

    // Once the analysis is verified, a late report is refused by the run: 409, the entry removed again.
    await mustAnalysisAct(p, u.tech, accession, test, 'result', { kind: 'numeric', value: 4.2, unit: 'mmol/L', performedBy: 'bench 1' });
    await mustAnalysisAct(p, u.tech, accession, test, 'submit');
    assert.equal((await sign(p, u.tech2, accession, test, 'verify')).status, 200);
    const late = await post(sources.analyser, report(accession, test));
    assert.equal(late.status, 409, JSON.stringify(late.body));
    assert.equal((await entries(accession, test)).filter((e) => e.message_id).length, 0);
    assert.equal((await readAnalysis(p, u.tech, accession, test)).result.value, 4.2);
  });
});
