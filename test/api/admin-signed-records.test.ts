import assert from 'node:assert/strict';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';

/**
 * Records a person signs for a role's responsibility are that role's alone: an admin (IT) who is not the lab
 * director or a quality officer cannot set verification policy, reference ranges or autoverification rules, nor
 * assess competence or grant and revoke authorisations, which the gate and autoverification then trust.
 */
describe('admin does not pass the routes of signed clinical and competence records', function () {
  this.timeout(120_000);
  let p: Platform;
  let u: Record<'admin' | 'director', TestUser>;
  const routes: [method: 'PUT' | 'POST', path: string][] = [
    ['PUT', '/api/v1/tests/GLU/result-policy'],
    ['POST', '/api/v1/tests/GLU/reference-ranges'],
    ['POST', '/api/v1/tests/GLU/autoverification-rules'],
    ['PUT', '/api/v1/gate/activities/result.verify/requirements'],
    ['POST', '/api/v1/competency-assessments'],
    ['POST', '/api/v1/authorisations'],
    ['POST', '/api/v1/authorisations/00000000-0000-4000-8000-000000000000/revoke'],
  ];

  before(async () => {
    p = await startPlatform({ withWorker: false });
    u = await makeUsers({ admin: ['admin'], director: ['lab_director'] });
  });
  after(async () => p?.stop());

  for (const [method, path] of routes) {
    it(`${method} ${path}: 403 for admin, past the role check for the lab director`, async () => {
      const refused = await p.api(method, path, { key: u.admin.apiKey, body: {} });
      assert.equal(refused.status, 403, JSON.stringify(refused.body));
      assert.match(refused.body.detail, /this needs one of the roles/);
      const director = await p.api(method, path, { key: u.director.apiKey, body: {} });
      assert.notEqual(director.status, 403, JSON.stringify(director.body));
      assert.ok(director.status >= 400 && director.status < 500, `an empty body is refused as bad input: ${director.status}`);
    });
  }
});
