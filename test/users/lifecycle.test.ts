import assert from 'node:assert/strict';
import type { Notification, PoolClient } from 'pg';
import { openCodecSession } from '../../db/codec-sessions';
import { userForApiKey } from '../../db/identity';
import { createScratchDatabase, type ScratchDatabase } from '../helpers/scratch-database';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { assertProblem } from '../api/support';

/**
 * The user lifecycle over the API, on a database of its own: the last-active-admin rule can only be exercised where
 * this file's admins are the only ones.
 */
describe('user lifecycle: list, read, signed role changes, deactivation and reactivation', () => {
  let scratch: ScratchDatabase;
  let p: Platform;
  let u: Record<'admin' | 'second' | 'leaver' | 'qa' | 'tech', TestUser>;
  let listener: PoolClient;
  const notices: Notification[] = [];

  before(async () => {
    scratch = await createScratchDatabase('users');
    p = await startPlatform({ db: scratch.db, withWorker: false });
    u = await makeUsers(
      { admin: ['admin'], second: ['admin', 'qa_manager'], leaver: ['lab_technician', 'author'], qa: ['qa_manager'], tech: ['lab_technician'] },
      scratch.db,
    );
    listener = (await scratch.db.client.acquireConnection()) as PoolClient;
    listener.on('notification', (n) => notices.push(n));
    await listener.query('listen labflow_credentials');
  });
  after(async () => {
    await listener.query('unlisten *');
    await scratch.db.client.releaseConnection(listener);
    await p.stop();
    await scratch.drop();
  });

  const get = (path: string, who = u.admin) => p.api('GET', `/api/v1${path}`, { key: who.apiKey });
  const send = (method: 'POST' | 'PUT', path: string, body: unknown, who = u.admin) => p.api(method, `/api/v1${path}`, { key: who.apiKey, body });
  const signed = (extra: Record<string, unknown> = {}, who = u.admin) => ({ password: who.password, reason: 'left the lab', ...extra });
  const events = (username: string, action: string) =>
    scratch.db('audit_events').where({ entity_type: 'user', entity_id: username, action }).orderBy('seq');

  it('lists users filtered by role and active flag, paged, and reads one with its version; admin only', async () => {
    const techs = await get('/users?role=lab_technician&active=true&limit=1');
    assert.equal(techs.status, 200, JSON.stringify(techs.body));
    assert.equal(techs.body.total, 2);
    assert.equal(techs.body.items.length, 1);
    const page2 = await get('/users?role=lab_technician&active=true&limit=1&offset=1');
    assert.deepEqual(
      [techs.body.items[0].username, page2.body.items[0].username].sort(),
      [u.leaver.username, u.tech.username].sort(),
    );
    const one = await get(`/users/${u.leaver.username}`);
    assert.equal(one.status, 200);
    assert.deepEqual(one.body.roles, ['lab_technician', 'author']);
    assert.match(one.body.version, /^[0-9a-f]{16}$/);
    assert.equal(one.headers.get('etag'), `"${one.body.version}"`);
    assertProblem(await get('/users', u.qa), 403, 'forbidden');
    assertProblem(await get('/users/nobody.here'), 404, 'not-found');
    assertProblem(await get('/users?active=maybe'), 400, 'validation', 'query.active');
  });

  it('changes roles only when signed with the admin’s password, records old → new values and alerts QA', async () => {
    const path = `/users/${u.tech.username}/roles`;
    assertProblem(await send('PUT', path, { roles: ['reviewer'], reason: 'x' }), 400, 'validation', 'body.password');
    assertProblem(await send('PUT', path, { roles: ['reviewer'], ...signed({ password: 'wrong-password' }) }), 403, 'signature-password-invalid');
    assertProblem(await send('PUT', path, { roles: ['reviewer'], ...signed() }, u.qa), 403, 'forbidden');
    assertProblem(await send('PUT', '/users/nobody.here/roles', { roles: ['reviewer'], ...signed() }), 404, 'not-found');
    assert.equal((await events(u.tech.username, 'user.roles_changed')).length, 0, 'nothing recorded by a refused change');

    const { version } = (await get(`/users/${u.tech.username}`)).body;
    const res = await send('PUT', path, { roles: ['lab_technician', 'reviewer'], expectedVersion: version, ...signed({ reason: 'trained to review' }) });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.roles, ['lab_technician', 'reviewer']);
    assert.notEqual(res.body.version, version);
    const [event] = await events(u.tech.username, 'user.roles_changed');
    assert.equal(event.actor, u.admin.username);
    assert.deepEqual(event.details.changes, [{ field: 'roles', old: ['lab_technician'], new: ['lab_technician', 'reviewer'] }]);
    assert.equal(event.details.reason, 'trained to review');
    assert.equal(event.details.signature.meaning, 'responsibility');
    assert.equal(event.details.signature.printedName, u.admin.actor.printedName);
    const alerts = await scratch.db('notifications').where({ user_id: u.qa.actor.userId, kind: 'user.roles_changed' });
    assert.equal(alerts.length, 1);
    assert.match(alerts[0].body, /roles: \["lab_technician"\] → \["lab_technician","reviewer"\]/);

    // The version the admin read is now stale: 409, nothing changed.
    const stale = await send('PUT', path, { roles: ['lab_technician'], expectedVersion: version, ...signed() });
    assertProblem(stale, 409, 'stale-user');
    assert.equal(stale.body.version, res.body.version);
    assertProblem(await send('PUT', path, { roles: ['reviewer', 'lab_technician'], ...signed() }), 409, 'illegal-transition');
  });

  it('refuses roles and the active flag through PATCH: they change only signed', async () => {
    const res = await p.api('PATCH', `/api/v1/users/${u.tech.username}`, { key: u.admin.apiKey, body: { active: false } });
    assertProblem(res, 422, 'signed-change-required');
    assert.equal((await get(`/users/${u.tech.username}`)).body.active, true);
  });

  it('deactivates: keys revoked and codec sessions closed in one go, the credentials channel told, QA alerted', async () => {
    await openCodecSession(scratch.db, u.leaver.actor.userId, 60_000);
    assert.equal((await get('/me', u.leaver)).status, 200);
    notices.length = 0;
    const res = await send('POST', `/users/${u.leaver.username}/deactivate`, signed());
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.active, false);
    assert.equal(res.body.revokedKeys, 1);
    assert.equal(res.body.closedSessions, 1);
    assert.deepEqual(res.body.handedOver, { capa: [], document: [], sample: [], summary: [], training: [] });
    const keys = await scratch.db('api_keys').where({ user_id: u.leaver.actor.userId });
    assert.ok(keys.every((k) => k.revoked_at !== null));
    assert.equal((await scratch.db('codec_sessions').where({ user_id: u.leaver.actor.userId })).length, 0);
    const notice = await waitFor(() => notices.find((n) => n.channel === 'labflow_credentials'), 'the credentials notice');
    assert.deepEqual(JSON.parse(notice.payload ?? ''), { userId: u.leaver.actor.userId });
    const [event] = await events(u.leaver.username, 'user.deactivated');
    assert.deepEqual(event.details.changes, [{ field: 'active', old: true, new: false }]);
    assert.equal(event.details.revokedKeys, 1);
    assert.equal((await scratch.db('notifications').where({ user_id: u.qa.actor.userId, kind: 'user.deactivated' })).length, 1);
    // The key no longer authenticates (each API process drops its cached copy on the notice above).
    assert.equal(await userForApiKey(scratch.db, u.leaver.apiKey), undefined);
    assertProblem(await send('POST', `/users/${u.leaver.username}/deactivate`, signed()), 409, 'illegal-transition');
  });

  it('reactivates, signed; the old keys stay revoked', async () => {
    const res = await send('POST', `/users/${u.leaver.username}/reactivate`, signed({ reason: 'came back' }));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.active, true);
    assert.equal(await userForApiKey(scratch.db, u.leaver.apiKey), undefined);
    const [event] = await events(u.leaver.username, 'user.reactivated');
    assert.deepEqual(event.details.changes, [{ field: 'active', old: false, new: true }]);
    assertProblem(await send('POST', `/users/${u.leaver.username}/reactivate`, signed()), 409, 'illegal-transition');
  });

  it('refuses an admin deactivating themselves and removing the last active admin (422 naming the rule)', async () => {
    assertProblem(await send('POST', `/users/${u.admin.username}/deactivate`, signed()), 422, 'self-deactivation');
    const demoted = await send('PUT', `/users/${u.second.username}/roles`, { roles: ['qa_manager'], ...signed() });
    assert.equal(demoted.status, 200, JSON.stringify(demoted.body));
    // Only u.admin is an active admin now: nobody may take that away, by a role change or a deactivation.
    const lastByRoles = await send('PUT', `/users/${u.admin.username}/roles`, { roles: ['qa_manager'], ...signed() });
    assertProblem(lastByRoles, 422, 'last-active-admin');
    assert.match(lastByRoles.body.detail, /rule last-active-admin/);
    assert.deepEqual((await get(`/users/${u.admin.username}`)).body.roles, ['admin']);
  });

  it('locks signing after repeated wrong passwords (423) like every other signed route', async () => {
    const path = `/users/${u.tech.username}/deactivate`;
    const wrong = signed({ password: 'wrong-password' }, u.second);
    const promoted = await send('PUT', `/users/${u.second.username}/roles`, { roles: ['admin', 'qa_manager'], ...signed() });
    assert.equal(promoted.status, 200, JSON.stringify(promoted.body));
    await send('POST', path, wrong, u.second);
    await send('POST', path, wrong, u.second);
    assertProblem(await send('POST', path, wrong, u.second), 403, 'signature-password-invalid');
    const locked = await send('POST', path, signed({}, u.second), u.second);
    assertProblem(locked, 423, 'signing-locked');
    assert.ok(Number(locked.headers.get('retry-after')) > 0);
    assert.equal((await get(`/users/${u.tech.username}`)).body.active, true);
  });
});
