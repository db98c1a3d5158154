import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { authorisationStatement } from '../../common/competence';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';
import { assertProblem } from '../api/support';
import { labUsers, mustAnalysisAct, routedSample, sign, testCode } from '../results/support';

const RESULT_VERIFICATION = 'result.verify';

describe('the gate before result verification', function () {
  this.timeout(180_000);
  let p: Platform;
  let u: Awaited<ReturnType<typeof labUsers>>;
  let qa: TestUser;

  before(async () => {
    p = await startPlatform();
    u = await labUsers();
    ({ qa } = await makeUsers({ qa: ['qa_manager'] }));
  });
  after(async () => {
    await testEnv().db('gate_activity_requirements').where({ activity: RESULT_VERIFICATION }).delete();
    await p.stop();
  });

  it("refuses a verifier not authorised for the test (403 naming it, audited) and accepts them once authorised for that test", async () => {
    const test = await testCode();
    const accession = await routedSample(p, u.doc, u.tech, [test]);
    await mustAnalysisAct(p, u.tech, accession, test, 'result', { kind: 'numeric', value: 4.2, unit: 'mmol/L', performedBy: 'bench 1' });
    await mustAnalysisAct(p, u.tech, accession, test, 'submit');
    const set = await p.api('PUT', `/api/v1/gate/activities/${RESULT_VERIFICATION}/requirements`, { key: qa.apiKey, body: { competency: false, authorisation: true } });
    assert.equal(set.status, 200, JSON.stringify(set.body));

    const refused = await sign(p, u.tech3, accession, test, 'verify');
    assertProblem(refused, 403, 'gate-refused');
    assert.deepEqual(refused.body.missing, [{ kind: 'authorisation', activity: RESULT_VERIFICATION, scope: test, reason: 'none', dueAt: null }]);
    const workflowId = `analysis:${accession}:${test}`;
    const audited = await testEnv().db('audit_events').where({ action: 'gate.refused', entity_type: 'analysis', entity_id: workflowId }).first('details');
    assert.equal(audited?.details.checkedAt, 'api');
    assert.equal((await testEnv().db('analyses').where({ workflow_id: workflowId }).first('state')).state, 'to_be_verified');

    // Authorised for another test only: still refused.
    const grant = async (scope: string) => {
      const validFrom = new Date(Date.now() - 1000).toISOString();
      const contentHash = createHash('sha256').update(authorisationStatement({ username: u.tech3.username, activity: RESULT_VERIFICATION, scope, validFrom }), 'utf8').digest('hex');
      const res = await p.api('POST', '/api/v1/authorisations', {
        key: qa.apiKey,
        body: { username: u.tech3.username, activity: RESULT_VERIFICATION, scope, validFrom, signature: { password: qa.password, meaning: 'authorisation', contentHash } },
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    };
    await grant('OTHER-TEST');
    assertProblem(await sign(p, u.tech3, accession, test, 'verify'), 403, 'gate-refused');
    await grant(test);
    const verified = await sign(p, u.tech3, accession, test, 'verify');
    assert.equal(verified.status, 200, JSON.stringify(verified.body));
    assert.equal(verified.body.state, 'verified');
  });
});
