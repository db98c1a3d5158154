import assert from 'node:assert/strict';
import { contentHashOf } from '../../common/capa-hash';
import { startPlatform, type Platform } from '../helpers/platform';
import type { TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';
import { labUsers, mustAnalysisAct, sign, testCode } from './support';
import { patientOf, routedFor } from './rules-support';

const problem = (type: string) => `urn:labflow:problem:${type}`;
const RULES = {
  allowedFlags: ['normal'],
  limits: { low: 3, high: 6 },
  delta: 'ignore',
  blockedInstrumentFlags: ['HEM', 'E07'],
  requireAcceptableSpecimen: true,
  requireInstrument: true,
};
const fromInstrument = (value: number, instrumentFlags: string[] = []) => ({
  kind: 'numeric',
  value,
  unit: 'mmol/L',
  performedBy: 'op-7',
  instrument: 'AU680-01',
  ...(instrumentFlags.length ? { instrumentFlags } : {}),
});

const auditOf = async (entityType: string, entityId: string) =>
  (await testEnv().db('audit_events').where({ entity_type: entityType, entity_id: entityId }).orderBy('seq').select('action', 'actor', 'details')) as {
    action: string;
    actor: string;
    details: Record<string, unknown>;
  }[];

describe('results: autoverification by signed rule sets, and the result configuration routes', function () {
  this.timeout(180_000);
  let p: Platform;
  let u: Record<'doc' | 'tech' | 'tech2' | 'tech3' | 'director', TestUser>;
  const rulesUrl = (test: string) => `/api/v1/tests/${test}/autoverification-rules`;
  const createRules = (who: TestUser, test: string, basedOnVersion: number | null, rules: object, hash?: string) =>
    p.api('POST', rulesUrl(test), {
      key: who.apiKey,
      body: {
        basedOnVersion,
        rules,
        signature: { password: who.password, meaning: 'approval', contentHash: hash ?? contentHashOf({ test, version: (basedOnVersion ?? 0) + 1, rules }) },
      },
    });
  before(async () => {
    p = await startPlatform();
    u = await labUsers();
  });
  after(() => p.stop());

  it('creates signed, versioned rule sets: the lab director only, the hash of what was sent, the version it replaces', async () => {
    const test = await testCode();
    assert.equal((await createRules(u.tech, test, null, RULES)).status, 403);
    const badHash = await createRules(u.director, test, null, RULES, 'a'.repeat(64));
    assert.equal(badHash.status, 422);
    assert.equal(badHash.body.type, problem('content-hash-mismatch'));
    const badPassword = await p.api('POST', rulesUrl(test), {
      key: u.director.apiKey,
      body: { basedOnVersion: null, rules: RULES, signature: { password: 'wrong', meaning: 'approval', contentHash: contentHashOf({ test, version: 1, rules: RULES }) } },
    });
    assert.equal(badPassword.status, 403);
    const unknownRule = await createRules(u.director, test, null, { ...RULES, extra: true });
    assert.equal(unknownRule.status, 400);
    assert.equal((await createRules(u.director, 'NOSUCHTEST', null, RULES)).status, 404);
    assert.equal((await p.api('GET', rulesUrl(test), { key: u.tech.apiKey })).body.items.length, 0, 'nothing written by a refusal');

    const v1 = await createRules(u.director, test, null, RULES);
    assert.equal(v1.status, 201, JSON.stringify(v1.body));
    assert.equal(v1.body.version, 1);
    assert.equal(v1.body.createdBy, u.director.username);
    assert.equal(v1.body.signature.meaning, 'approval');
    const stale = await createRules(u.director, test, null, { ...RULES, allowedFlags: ['normal', 'high'] });
    assert.equal(stale.status, 409);
    assert.equal(stale.body.type, problem('rule-set-version-conflict'));
    const v2 = await createRules(u.director, test, 1, { ...RULES, allowedFlags: ['normal', 'high'] });
    assert.equal(v2.status, 201);
    const list = await p.api('GET', rulesUrl(test), { key: u.tech.apiKey });
    assert.deepEqual(list.body.items.map((r: { version: number }) => r.version), [1, 2]);
    assert.deepEqual((await p.api('GET', `${rulesUrl(test)}/1`, { key: u.tech.apiKey })).body.rules, RULES);
    assert.equal((await p.api('GET', `${rulesUrl(test)}/3`, { key: u.tech.apiKey })).status, 404);
    assert.equal((await p.api('GET', rulesUrl(test), { key: u.doc.apiKey })).status, 403);
    const trail = await auditOf('autoverification_rule_set', test);
    assert.deepEqual(
      trail.map((e) => (e.action === 'autoverification_rules.versioned' ? `${e.action}:${e.details.version}` : e.action)),
      ['signature.password_rejected', 'autoverification_rules.versioned:1', 'autoverification_rules.versioned:2'],
    );
  });

  it('verifies a result that passes every rule (autoverified, counted as verified, version recorded); one failing any goes to a person with the reasons', async () => {
    const test = await testCode();
    assert.equal((await createRules(u.director, test, null, RULES)).status, 201);
    const patient = patientOf();
    const accession = await routedFor(p, u.doc, u.tech, [test], patient);
    await mustAnalysisAct(p, u.tech, accession, test, 'result', fromInstrument(4.2));
    const passed = await mustAnalysisAct(p, u.tech, accession, test, 'submit');
    assert.equal(passed.state, 'verified');
    assert.equal(passed.autoverification.passed, true);
    assert.equal(passed.autoverification.version, 1);
    assert.deepEqual(passed.autoverification.reasons, []);
    const workflowId = `analysis:${accession}:${test}`;
    const trail = await auditOf('analysis', workflowId);
    assert.deepEqual(
      trail.filter((e) => e.actor === 'system:autoverification').map((e) => `${e.action}:${e.details.ruleSetVersion}`),
      ['analysis.autoverified:1', 'analysis.verified:1'],
    );
    // A person's verification is no longer needed or possible; the lab director releases as after any verification.
    assert.equal((await sign(p, u.tech2, accession, test, 'verify')).status, 409);
    const released = await sign(p, u.director, accession, test, 'release');
    assert.equal(released.status, 200, JSON.stringify(released.body));
    assert.equal(released.body.state, 'released');

    // Failing rules: a high value outside the limits, a blocked instrument flag, typed in by hand on another sample.
    const other = await routedFor(p, u.doc, u.tech, [test], patient);
    await mustAnalysisAct(p, u.tech, other, test, 'result', { ...fromInstrument(6.4, ['HEM', 'X1']), instrument: undefined });
    const failed = await mustAnalysisAct(p, u.tech, other, test, 'submit');
    assert.equal(failed.state, 'to_be_verified');
    assert.equal(failed.autoverification.passed, false);
    assert.deepEqual(failed.autoverification.reasons.map((r: { rule: string }) => r.rule).sort(), ['flag', 'instrument', 'instrument-flags', 'limits']);
    assert.match(failed.autoverification.reasons.find((r: { rule: string }) => r.rule === 'instrument-flags').detail, /HEM/);
    const refusedTrail = await auditOf('analysis', `analysis:${other}:${test}`);
    assert.deepEqual(refusedTrail.find((e) => e.action === 'analysis.autoverification_failed')?.details.rules, ['flag', 'limits', 'instrument-flags', 'instrument']);
    const byPerson = await sign(p, u.tech2, other, test, 'verify');
    assert.equal(byPerson.status, 200, JSON.stringify(byPerson.body));
    assert.equal(byPerson.body.state, 'verified');

    // A new signed version is in force for the next submission, and its version is what is recorded.
    assert.equal((await createRules(u.director, test, 1, { ...RULES, allowedFlags: ['normal', 'high'], limits: null })).status, 201);
    const third = await routedFor(p, u.doc, u.tech, [test], patient);
    await mustAnalysisAct(p, u.tech, third, test, 'result', fromInstrument(6.4));
    const byV2 = await mustAnalysisAct(p, u.tech, third, test, 'submit');
    assert.equal(byV2.state, 'verified');
    assert.equal(byV2.autoverification.version, 2);
  });

  it('without a rule set a submitted result waits for a person', async () => {
    const test = await testCode();
    const accession = await routedFor(p, u.doc, u.tech, [test], patientOf());
    await mustAnalysisAct(p, u.tech, accession, test, 'result', fromInstrument(4.2));
    const submitted = await mustAnalysisAct(p, u.tech, accession, test, 'submit');
    assert.equal(submitted.state, 'to_be_verified');
    assert.equal(submitted.autoverification, null);
  });

  it("configures a test's policy and versioned reference ranges, audited with old and new values", async () => {
    const test = await testCode();
    const policyUrl = `/api/v1/tests/${test}/result-policy`;
    const change = { delta: { limit: 25, kind: 'percent', windowHours: 72 }, measuringRange: { low: 0.1, high: 50 } };
    assert.equal((await p.api('PUT', policyUrl, { key: u.tech.apiKey, body: change })).status, 403);
    const changed = await p.api('PUT', policyUrl, { key: u.director.apiKey, body: change });
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    assert.deepEqual(changed.body.delta, change.delta);
    assert.deepEqual((await p.api('GET', policyUrl, { key: u.tech.apiKey })).body.measuringRange, change.measuringRange);
    assert.equal((await p.api('PUT', policyUrl, { key: u.director.apiKey, body: { measuringRange: { low: 5, high: 1 } } })).status, 400);
    assert.equal((await p.api('GET', '/api/v1/tests/NOSUCHTEST/result-policy', { key: u.tech.apiKey })).status, 404);
    const policyTrail = await auditOf('test_result_policy', test);
    assert.deepEqual(policyTrail[0].details.changes, [
      { field: 'delta', old: null, new: change.delta },
      { field: 'measuringRange', old: null, new: change.measuringRange },
    ]);

    const rangesUrl = `/api/v1/tests/${test}/reference-ranges`;
    const v2 = { basedOnVersion: 1, ranges: [{ low: 3.6, high: 5.4, warningLow: 3, warningHigh: 6, criticalLow: 2.5, criticalHigh: 7 }] };
    assert.equal((await p.api('POST', rangesUrl, { key: u.tech.apiKey, body: v2 })).status, 403);
    const disordered = await p.api('POST', rangesUrl, { key: u.director.apiKey, body: { basedOnVersion: 1, ranges: [{ low: 3.6, high: 5.4, warningHigh: 5 }] } });
    assert.equal(disordered.status, 422);
    assert.equal(disordered.body.type, problem('range-limits-out-of-order'));
    const created = await p.api('POST', rangesUrl, { key: u.director.apiKey, body: v2 });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.currentVersion, 2);
    assert.deepEqual(created.body.versions.map((v: { version: number }) => v.version), [1, 2]);
    const stale = await p.api('POST', rangesUrl, { key: u.director.apiKey, body: v2 });
    assert.equal(stale.status, 409);
    assert.equal(stale.body.type, problem('range-version-conflict'));
    const rangeTrail = await auditOf('reference_ranges', test);
    assert.equal(rangeTrail.length, 1);
    const [{ old, new: now }] = rangeTrail[0].details.changes as { old: { version: number }; new: { version: number } }[];
    assert.deepEqual([old.version, now.version], [1, 2]);
    // The new version judges the next result, shoulders included.
    const accession = await routedFor(p, u.doc, u.tech, [test], patientOf());
    const judged = await mustAnalysisAct(p, u.tech, accession, test, 'result', fromInstrument(6.5));
    assert.equal(judged.result.flag, 'warning_high');
    assert.equal(judged.result.referenceRange.version, 2);
  });
});
