import assert from 'node:assert/strict';
import { oidcSettings } from '../../api/config';
import { claimAt, emailFrom, rolesFrom, usernameFrom } from '../../api/oidc-claims';
import { looksLikeJwt } from '../../api/oidc';
import { ConfigError, loadConfig } from '../../common/config';

describe('single sign-on settings and claims', () => {
  it('is off without OIDC_ISSUER, needs an audience with it, and reads the rest', () => {
    assert.equal(oidcSettings(loadConfig({})), undefined);
    assert.throws(() => oidcSettings(loadConfig({ OIDC_ISSUER: 'https://idp.lab.example/realms/lab' })), ConfigError);
    const settings = oidcSettings(
      loadConfig({
        OIDC_ISSUER: 'https://idp.lab.example/realms/lab',
        OIDC_AUDIENCE: 'labflow, api://labflow',
        OIDC_CLOCK_TOLERANCE: '1m',
        OIDC_USERNAME_DOMAINS: 'Lab.Example',
        OIDC_ROLES_CLAIM: 'realm_access.roles',
        OIDC_ROLE_MAP: '{"lab-qa":"qa_manager","lab-docs":["document_control","author"]}',
        OIDC_JIT: 'true',
      }),
    );
    assert.deepEqual(settings, {
      issuer: 'https://idp.lab.example/realms/lab',
      audiences: ['labflow', 'api://labflow'],
      clockToleranceSeconds: 60,
      usernameClaims: ['preferred_username', 'sub'],
      usernameDomains: ['lab.example'],
      rolesClaim: 'realm_access.roles',
      roleMap: { 'lab-qa': ['qa_manager'], 'lab-docs': ['document_control', 'author'] },
      jit: true,
      httpTimeoutMs: 5000,
    });
  });

  it('refuses a role map that is not JSON or names a role labflow does not have', () => {
    assert.throws(() => loadConfig({ OIDC_ROLE_MAP: 'lab-qa=qa_manager' }), /OIDC_ROLE_MAP: expected a JSON object/);
    assert.throws(() => loadConfig({ OIDC_ROLE_MAP: '{"lab-qa":"superuser"}' }), /OIDC_ROLE_MAP: "lab-qa" maps to "superuser"/);
    assert.throws(() => loadConfig({ OIDC_ISSUER: 'not a url' }), /OIDC_ISSUER/);
  });

  it('reads dotted claims, maps groups to roles and notices a group overage', () => {
    const payload = { realm_access: { roles: ['lab-qa', 'offline_access'] }, scp: 'lab-docs other', _claim_names: { groups: 'src1' } };
    const map = { 'lab-qa': ['qa_manager' as const], 'lab-docs': ['author' as const, 'document_control' as const] };
    assert.deepEqual(claimAt(payload, 'realm_access.roles'), ['lab-qa', 'offline_access']);
    assert.deepEqual(rolesFrom(payload, 'realm_access.roles', map), ['qa_manager']);
    assert.deepEqual(rolesFrom(payload, 'scp', map), ['author', 'document_control']);
    assert.equal(rolesFrom(payload, 'groups', map), 'overage');
    assert.deepEqual(rolesFrom({}, 'groups', map), []);
  });

  it('takes the username from the first claim present, lower-cased, with a configured domain taken off', () => {
    const settings = { usernameClaims: ['preferred_username', 'sub'], usernameDomains: ['lab.example'] };
    assert.equal(usernameFrom({ preferred_username: 'Alice.Smith@Lab.Example', sub: 'x' }, settings), 'alice.smith');
    assert.equal(usernameFrom({ sub: 'bob' }, settings), 'bob');
    assert.equal(usernameFrom({ preferred_username: 'alice@gmail.com' }, settings), undefined);
    assert.equal(usernameFrom({ preferred_username: 'has space' }, settings), undefined);
    assert.equal(usernameFrom({}, settings), undefined);
    assert.equal(emailFrom({ email: 'a.b@lab.example', preferred_username: 'x@lab.example' }, settings), 'a.b@lab.example');
    assert.equal(emailFrom({ preferred_username: 'Alice@Lab.Example' }, settings), 'Alice@Lab.Example');
    assert.equal(emailFrom({ email: 'not an address', preferred_username: 'alice' }, settings), undefined);
  });

  it('sends JWTs to single sign-on and leaves labflow API keys to the key check', () => {
    assert.equal(looksLikeJwt('eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln'), true);
    assert.equal(looksLikeJwt('lf_0123456789ab_abcdefghijklmnopqrstuvwx'), false);
    assert.equal(looksLikeJwt('eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0'), false);
  });
});
