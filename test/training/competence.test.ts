import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { capaGrantedArgs } from '../../common/capa-grants';
import { effectivenessUpdate } from '../../common/capa';
import { authorisationStatement } from '../../common/competence';
import { workflowIds } from '../../common/ids';
import { toProblem } from '../../api/error-handler';
import { checkGate } from '../../db/gate';
import { issueTestGrant, refusalType } from '../helpers/forgery';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { assertProblem } from '../api/support';
import { act, createCapa, inHours, toImplementation, waitForStage } from '../capa/support';

const CAPA_VERIFICATION = 'capa.verify_effectiveness';
/** An activity only this file configures, so nothing else in the shared database depends on it. */
const VERIFY_TSH = 'result.verify_competence_test';
const DAY = 86_400_000;
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

describe('competence and authorisation, and the gate that requires them', () => {
  let p: Platform;
  let u: Record<'qa' | 'director' | 'tech' | 'author' | 'owner', TestUser>;
  const db = () => testEnv().db;

  before(async () => {
    p = await startPlatform();
    u = await makeUsers({ qa: ['qa_manager', 'reviewer'], director: ['lab_director'], tech: ['lab_technician'], author: ['author'], owner: ['author'] });
  });
  after(async () => {
    await db()('gate_activity_requirements').whereIn('activity', [CAPA_VERIFICATION, VERIFY_TSH]).delete();
    await p.stop();
  });

  const assess = (by: TestUser, body: Record<string, unknown>) => p.api('POST', '/api/v1/competency-assessments', { key: by.apiKey, body });
  function authorise(by: TestUser, who: TestUser, activity: string, scope: string, validity: { validFrom: string; validUntil?: string }, password = by.password) {
    const contentHash = sha256(authorisationStatement({ username: who.username, activity, scope, ...validity }));
    return p.api('POST', '/api/v1/authorisations', {
      key: by.apiKey,
      body: { username: who.username, activity, scope, ...validity, signature: { password, meaning: 'authorisation', contentHash } },
    });
  }
  const gate = (who: TestUser, scope?: string) => checkGate(db(), { userId: who.actor.userId, roles: who.actor.roles }, { activity: VERIFY_TSH, scope });

  it('computes the next assessment: twice in the first year, then yearly', async () => {
    const t0 = Date.now() - 400 * DAY;
    const dates = [t0, t0 + 182 * DAY, t0 + 364 * DAY];
    const due: string[] = [];
    for (const at of dates) {
      const res = await assess(u.qa, { username: u.author.username, activity: 'document.approve', scope: 'sop', method: 'direct_observation', outcome: 'competent', assessedAt: new Date(at).toISOString() });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      due.push(res.body.nextDueAt);
    }
    assert.deepEqual(due, [new Date(t0 + 182 * DAY).toISOString(), new Date(t0 + 364 * DAY).toISOString(), new Date(t0 + 729 * DAY).toISOString()]);
    const failed = await assess(u.director, { username: u.author.username, activity: 'document.approve', scope: 'sop', method: 'written_test', outcome: 'not_competent' });
    assert.equal(failed.status, 201);
    assert.equal(failed.body.nextDueAt, null);
    const record = await p.api('GET', `/api/v1/users/${u.author.username}/competence`, { key: u.author.apiKey });
    assert.equal(record.status, 200);
    assert.equal(record.body.assessments.length, 4);
    assert.equal(record.body.assessments[0].outcome, 'not_competent');
  });

  it('refuses bad assessments and grants with problem+json, writing nothing', async () => {
    const before = Number((await db()('competency_assessments').where({ user_id: u.tech.actor.userId }).count({ n: '*' }).first())?.n);
    assertProblem(await assess(u.tech, { username: u.author.username, activity: VERIFY_TSH, method: 'blind_sample', outcome: 'competent' }), 403, 'forbidden');
    assertProblem(await assess(u.qa, { username: 'nobody.here', activity: VERIFY_TSH, method: 'blind_sample', outcome: 'competent' }), 404, 'not-found');
    assertProblem(await assess(u.qa, { username: u.qa.username, activity: VERIFY_TSH, method: 'blind_sample', outcome: 'competent' }), 422, 'self-assessment');
    assertProblem(
      await assess(u.qa, { username: u.tech.username, activity: VERIFY_TSH, method: 'blind_sample', outcome: 'competent', assessedAt: new Date(Date.now() + DAY).toISOString() }),
      422,
      'assessment-in-future',
    );
    assertProblem(await assess(u.qa, { username: u.tech.username, activity: 'Not An Activity', method: 'blind_sample', outcome: 'competent' }), 400, 'validation');
    assert.equal(Number((await db()('competency_assessments').where({ user_id: u.tech.actor.userId }).count({ n: '*' }).first())?.n), before);

    const now = new Date().toISOString();
    assertProblem(await authorise(u.qa, u.tech, VERIFY_TSH, 'TSH', { validFrom: now, validUntil: new Date(Date.now() - DAY).toISOString() }), 422, 'validity-invalid');
    const wrongHash = await p.api('POST', '/api/v1/authorisations', {
      key: u.qa.apiKey,
      body: { username: u.tech.username, activity: VERIFY_TSH, scope: 'TSH', validFrom: now, signature: { password: u.qa.password, meaning: 'authorisation', contentHash: 'a'.repeat(64) } },
    });
    assertProblem(wrongHash, 422, 'content-hash-mismatch');
    assertProblem(await authorise(u.qa, u.tech, VERIFY_TSH, 'TSH', { validFrom: now }, 'not-the-password'), 403, 'signature-password-invalid');
    assertProblem(await authorise(u.qa, u.qa, VERIFY_TSH, 'TSH', { validFrom: now }), 422, 'self-authorisation');
    assertProblem(await authorise(u.tech, u.author, VERIFY_TSH, 'TSH', { validFrom: now }), 403, 'forbidden');
    assert.equal((await db()('authorisations').where({ user_id: u.tech.actor.userId })).length, 0);
  });

  it('requires a current competency and an active authorisation where configured, and refuses at once when either lapses', async () => {
    const set = await p.api('PUT', `/api/v1/gate/activities/${VERIFY_TSH}/requirements`, { key: u.qa.apiKey, body: { competency: true, authorisation: true } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assertProblem(await p.api('PUT', `/api/v1/gate/activities/${VERIFY_TSH}/requirements`, { key: u.tech.apiKey, body: { competency: false, authorisation: false } }), 403, 'forbidden');

    const none = await gate(u.tech, 'TSH');
    assert.ok(!none.ok);
    assert.deepEqual(
      none.missing.map((m) => [m.kind, 'reason' in m ? m.reason : null]),
      [
        ['competency', 'none'],
        ['authorisation', 'none'],
      ],
    );

    // Competent, with the reassessment due seconds from now (assessed 182 days ago, less 15 seconds: time for the two
    // signed authorisations below on a slow machine).
    const assessedAt = new Date(Date.now() - 182 * DAY + 15_000).toISOString();
    const assessed = await assess(u.qa, { username: u.tech.username, activity: VERIFY_TSH, scope: 'TSH', method: 'blind_sample', outcome: 'competent', assessedAt });
    assert.equal(assessed.status, 201, JSON.stringify(assessed.body));
    const granted = await authorise(u.director, u.tech, VERIFY_TSH, 'TSH', { validFrom: new Date(Date.now() - 1000).toISOString() });
    assert.equal(granted.status, 201, JSON.stringify(granted.body));
    assert.equal(granted.body.state, 'active');
    assert.equal(granted.body.signature.meaning, 'authorisation');
    assert.equal(granted.body.signature.printedName, u.director.actor.printedName);
    assertProblem(await authorise(u.qa, u.tech, VERIFY_TSH, 'TSH', { validFrom: new Date().toISOString() }), 409, 'authorisation-standing');

    assert.deepEqual(await gate(u.tech, 'TSH'), { ok: true });
    // Authorised for TSH only: another test is not covered.
    const otherScope = await gate(u.tech, 'FT4');
    assert.ok(!otherScope.ok && otherScope.missing.every((m) => m.kind === 'competency' || m.kind === 'authorisation'));

    // The competency lapses at its next due date: the gate refuses from then on, naming the date.
    const expired = await waitFor(async () => {
      const verdict = await gate(u.tech, 'TSH');
      return verdict.ok ? null : verdict;
    }, 'the competency expiring', 45_000);
    assert.deepEqual(
      expired.missing.map((m) => [m.kind, 'reason' in m ? m.reason : null]),
      [['competency', 'expired']],
    );
    const reassessed = await assess(u.director, { username: u.tech.username, activity: VERIFY_TSH, scope: 'TSH', method: 'direct_observation', outcome: 'competent' });
    assert.equal(reassessed.status, 201);
    assert.deepEqual(await gate(u.tech, 'TSH'), { ok: true });

    // A revocation refuses at once, and cannot be repeated.
    const revoked = await p.api('POST', `/api/v1/authorisations/${granted.body.id}/revoke`, { key: u.qa.apiKey, body: { reason: 'left the immunoassay bench' } });
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    assert.equal(revoked.body.state, 'revoked');
    const afterRevoke = await gate(u.tech, 'TSH');
    assert.ok(!afterRevoke.ok);
    assert.deepEqual(afterRevoke.missing.map((m) => [m.kind, 'reason' in m ? m.reason : null]), [['authorisation', 'revoked']]);
    assertProblem(await p.api('POST', `/api/v1/authorisations/${granted.body.id}/revoke`, { key: u.qa.apiKey, body: { reason: 'again' } }), 409, 'authorisation-ended');
    assertProblem(await p.api('POST', `/api/v1/authorisations/00000000-0000-4000-8000-000000000000/revoke`, { key: u.qa.apiKey, body: { reason: 'unknown' } }), 404, 'not-found');
    const trail = await db()('audit_events').where({ entity_type: 'authorisation', entity_id: granted.body.id }).orderBy('seq').pluck('action');
    assert.deepEqual(trail, ['authorisation.granted', 'authorisation.revoked']);
    // Authorisations are never deleted, assessments never changed, even by the owner.
    await assert.rejects(db()('authorisations').where({ id: granted.body.id }).delete(), /refused|append-only/);
    await assert.rejects(db()('competency_assessments').where({ id: assessed.body.id }).update({ outcome: 'not_competent' }), /refused|append-only/);

    // A grant valid only from tomorrow does not count today.
    const later = await authorise(u.qa, u.tech, VERIFY_TSH, 'TSH', { validFrom: new Date(Date.now() + DAY).toISOString() });
    assert.equal(later.status, 201, JSON.stringify(later.body));
    assert.equal(later.body.state, 'pending');
    const pending = await gate(u.tech, 'TSH');
    assert.ok(!pending.ok && pending.missing.some((m) => m.kind === 'authorisation' && m.reason === 'not_yet_valid'));
  });

  it('refuses CAPA verification without the authorisation (403 naming it), and in the recording step when it was revoked after the API check', async () => {
    const set = await p.api('PUT', `/api/v1/gate/activities/${CAPA_VERIFICATION}/requirements`, { key: u.director.apiKey, body: { competency: false, authorisation: true } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    const { number } = await createCapa(p, u.owner, { sources: [{ type: 'sample', id: `ACC-C${Date.now()}` }] });
    await toImplementation(p, { qa: u.qa, owner: u.owner }, number, [
      { type: 'corrective', description: 'Recalibrate', owner: { user: u.owner.username }, dueAt: inHours(24) },
    ]);
    await act(p, u.owner, number, '/actions/A1/complete', { evidence: 'Done' });
    await waitForStage(p, u.qa, number, 'effectiveness_review');
    const check = { results: [{ criterionId: 'C1', met: true, evidence: 'Rate 1%' }], comment: '' };

    const refused = await p.api('POST', `/api/v1/capas/${number}/effectiveness`, { key: u.qa.apiKey, body: { results: check.results } });
    assertProblem(refused, 403, 'gate-refused');
    assert.match(refused.body.detail, /authorisation for capa\.verify_effectiveness/);
    assert.deepEqual(refused.body.missing, [{ kind: 'authorisation', activity: CAPA_VERIFICATION, scope: '*', reason: 'none', dueAt: null }]);

    const granted = await authorise(u.director, u.qa, CAPA_VERIFICATION, '*', { validFrom: new Date(Date.now() - 1000).toISOString() });
    assert.equal(granted.status, 201, JSON.stringify(granted.body));
    // The API's check passed (the grant stands for it); the authorisation is revoked before the run records.
    const grant = await issueTestGrant(u.qa, workflowIds.capa(number), 'capa.record_effectiveness', capaGrantedArgs['capa.record_effectiveness'](check));
    const revoked = await p.api('POST', `/api/v1/authorisations/${granted.body.id}/revoke`, { key: u.director.apiKey, body: { reason: 'suspended pending retraining' } });
    assert.equal(revoked.status, 200);
    const handle = testEnv().client.workflow.getHandle(workflowIds.capa(number));
    const failed: unknown = await handle.executeUpdate(effectivenessUpdate, { args: [{ actor: u.qa.actor, ...check, grant }] }).then(() => null, (err: unknown) => err);
    assert.equal(await refusalType(Promise.reject(failed)), 'GateRefused');
    // The API answers the recording step's refusal as it answers its own: 403 naming what is missing.
    const problem = toProblem(failed)?.body();
    assert.equal(problem?.type, 'urn:labflow:problem:gate-refused');
    assert.deepEqual(problem?.missing, [{ kind: 'authorisation', activity: CAPA_VERIFICATION, scope: '*', reason: 'revoked', dueAt: null }]);
    const audited = await db()('audit_events').where({ action: 'gate.refused', entity_id: number }).whereRaw(`details->>'checkedAt' = 'recording'`).first();
    assert.ok(audited, 'the refusal in the recording step is in the trail');
    assert.equal((await db()('capas').where({ number }).first('stage')).stage, 'effectiveness_review');

    const again = await authorise(u.director, u.qa, CAPA_VERIFICATION, '*', { validFrom: new Date(Date.now() - 1000).toISOString() });
    assert.equal(again.status, 201, JSON.stringify(again.body));
    await act(p, u.qa, number, '/effectiveness', { results: check.results });
  });
});
