import assert from 'node:assert/strict';
import { webhookSignature } from '../../api/routes/sample-intake-webhooks';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';
import { tag } from '../sample-intake/support';
import { contentHashOf } from '../../common/capa-hash';
import { assembled, release } from '../reports/support';
import { analysisAct, labUsers, mustAnalysisAct, readAnalysis, routedSample, sign, testCode } from './support';

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
    // Submitted by the instrument path at once; without a rule set for the test it waits for a person.
    assert.equal(res.body.analysisState, 'to_be_verified');
    const shown = await readAnalysis(p, u.tech, accession, test);
    assert.equal(shown.state, 'to_be_verified');
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

    // Nobody submits it again; the contact entered it, so the contact may not verify it; another technician may.
    assert.equal((await analysisAct(p, u.tech, accession, test, 'submit')).status, 409);
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
  const RULES = {
    allowedFlags: ['normal'],
    limits: { low: 3, high: 6 },
    delta: 'ignore',
    blockedInstrumentFlags: ['HEM'],
    requireAcceptableSpecimen: true,
    requireInstrument: true,
  };
  const signedRules = async (test: string) => {
    const res = await p.api('POST', `/api/v1/tests/${test}/autoverification-rules`, {
      key: u.director.apiKey,
      body: {
        basedOnVersion: null,
        rules: RULES,
        signature: { password: u.director.password, meaning: 'approval', contentHash: contentHashOf({ test, version: 1, rules: RULES }) },
      },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
  };
  const auditOf = (workflowId: string) =>
    testEnv()
      .db('audit_events')
      .where({ entity_type: 'analysis', entity_id: workflowId })
      .orderBy('seq')
      .select('action', 'actor', 'actor_id', 'details') as Promise<{ action: string; actor: string; actor_id: string | null; details: Record<string, unknown> }[]>;

  it('submits a reported value by the instrument path: the instrument and its performer are the submitter, not the contact', async () => {
    const test = await testCode();
    const accession = await routedSample(p, u.doc, u.tech, [test]);
    const body = report(accession, test, { result: { kind: 'numeric', value: 4.4, unit: 'mmol/L', performedBy: 'op-221', instrument: 'AU680-07' } });
    assert.equal((await post(sources.analyser, body)).status, 202);
    const shown = await readAnalysis(p, u.tech, accession, test);
    assert.equal(shown.state, 'to_be_verified');
    assert.deepEqual(shown.submittedBy, {
      by: 'instrument',
      instrument: 'AU680-07',
      performedBy: 'op-221',
      source: sources.analyser.name,
      messageId: body.messageId,
      entryId: (await testEnv().db('analysis_entries').where({ message_id: body.messageId }).first('id')).id,
    });
    const trail = await auditOf(shown.workflowId);
    const entered = trail.find((e) => e.action === 'analysis.resulted');
    const submitted = trail.filter((e) => e.action === 'analysis.to_be_verified');
    assert.equal(entered?.actor_id, u.tech3.actor.userId, 'the entry is the contact’s, as before');
    assert.equal(submitted.length, 1);
    assert.equal(submitted[0].actor, 'instrument:AU680-07');
    assert.equal(submitted[0].actor_id, null, 'no person is recorded as having submitted it');
    assert.equal((submitted[0].details.submittedBy as { performedBy: string }).performedBy, 'op-221');

    // A person's entry of the same kind (an instrument named by hand) is not submitted for them.
    const other = await testCode();
    const manual = await routedSample(p, u.doc, u.tech, [other]);
    const typed = await mustAnalysisAct(p, u.tech, manual, other, 'result', { kind: 'numeric', value: 4.4, unit: 'mmol/L', performedBy: 'op-221', instrument: 'AU680-07' });
    assert.equal(typed.state, 'resulted');
    assert.equal((await readAnalysis(p, u.tech, manual, other)).submittedBy, undefined);
  });

  it('lets the rule set judge it at once: a pass is verified by the rule set and starts the report; a failure goes to a person with reasons', async () => {
    const test = await testCode();
    await signedRules(test);
    const passing = await routedSample(p, u.doc, u.tech, [test]);
    const res = await post(sources.analyser, report(passing, test, { result: { kind: 'numeric', value: 4.2, unit: 'mmol/L', performedBy: 'op-114', instrument: 'AU680-07' } }));
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.analysisState, 'verified');
    const shown = await readAnalysis(p, u.tech, passing, test);
    assert.equal(shown.state, 'verified');
    assert.equal(shown.autoverification.passed, true);
    assert.equal(shown.autoverification.version, 1);
    const actions = (await auditOf(shown.workflowId)).map((e) => `${e.action} by ${e.actor}`);
    assert.deepEqual(
      actions.filter((a) => !a.startsWith('analysis.opened') && !a.startsWith('analysis.resulted')),
      ['analysis.to_be_verified by instrument:AU680-07', 'analysis.autoverified by system:autoverification', 'analysis.verified by system:autoverification'],
    );
    // The sample's only test is verified: its report is assembled and the lab director releases it.
    assert.equal((await assembled(p, u.director, passing)).state, 'awaiting_release');
    assert.equal((await release(p, u.director, passing, 1)).status, 200);
    assert.equal((await readAnalysis(p, u.tech, passing, test)).state, 'released');

    const failing = await routedSample(p, u.doc, u.tech, [test]);
    const flagged = report(failing, test, { result: { kind: 'numeric', value: 6.5, unit: 'mmol/L', performedBy: 'op-114', instrument: 'AU680-07', instrumentFlags: ['HEM'] } });
    const res2 = await post(sources.analyser, flagged);
    assert.equal(res2.status, 202, JSON.stringify(res2.body));
    assert.equal(res2.body.analysisState, 'to_be_verified');
    const waiting = await readAnalysis(p, u.tech, failing, test);
    assert.equal(waiting.autoverification.passed, false);
    assert.deepEqual(
      waiting.autoverification.reasons.map((r: { rule: string }) => r.rule).sort(),
      ['flag', 'instrument-flags', 'limits'],
    );
    assert.equal((await sign(p, u.tech2, failing, test, 'verify')).status, 200, 'a person verifies what the rule set did not');
  });
});
