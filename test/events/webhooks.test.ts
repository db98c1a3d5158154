import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { DOMAIN_EVENT_SCHEMAS } from '../../common/domain-events';
import { appendAudit } from '../../db/audit';
import { driftsFrom, responseRecorder } from '../helpers/openapi-conformance';
import { openTask } from '../../db/tasks';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { startReceiver } from './receiver';
import { startWebhookPlatform, verifyBackup } from './support';

type Receiver = Awaited<ReturnType<typeof startReceiver>>;
type Setup = Awaited<ReturnType<typeof startWebhookPlatform>>;

async function subscribe(s: Setup, admin: TestUser, rx: Receiver, path: string, eventTypes: string[] = ['backup.verified']) {
  const res = await s.p.api('POST', '/api/v1/webhook-subscriptions', { key: admin.apiKey, body: { url: rx.url(path), eventTypes } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.match(res.body.secret, /^whsec_[A-Za-z0-9+/]+=*$/);
  rx.trust(path, res.body.secret);
  return res.body as { id: string; secret: string };
}

const deliveredIds = (rx: Receiver, path: string) =>
  rx
    .at(path)
    .filter((r) => r.status === 200)
    .map((r) => r.json.data.backupId);

describe('outbound webhooks: ordered, signed, retried, dead-lettered', () => {
  let s: Setup;
  let rx: Receiver;
  let users: Record<'admin' | 'operator' | 'tech', TestUser>;

  const recorder = responseRecorder();

  before(async () => {
    s = await startWebhookPlatform({}, recorder.middleware);
    rx = await startReceiver();
    users = await makeUsers({ admin: ['admin'], operator: ['it_operator'], tech: ['lab_technician'] });
  });
  after(async () => {
    await s?.stop();
    await rx?.close();
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'passed') return;
    // Every answer of the test, successes and refusals, is what the OpenAPI document declares for its status.
    const doc = (await s.p.api('GET', '/api/v1/openapi.json')).body;
    const { drifts } = driftsFrom(doc, recorder.exchanges.splice(0));
    assert.deepEqual(drifts, [], 'answers that differ from the OpenAPI document');
  });

  it('delivers a subscription its events in commit order, each signed to Standard Webhooks with the webhook-* headers', async () => {
    const sub = await subscribe(s, users.admin, rx, '/ordered');
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await verifyBackup());
    await waitFor(() => deliveredIds(rx, '/ordered').length >= 6, 'six deliveries');
    assert.deepEqual(deliveredIds(rx, '/ordered'), ids);
    for (const r of rx.at('/ordered')) {
      assert.deepEqual(r.verifiedWith, [sub.secret], 'the standardwebhooks library verifies each delivery');
      assert.equal(r.headers['webhook-id'], r.json.id);
      assert.match(String(r.headers['webhook-timestamp']), /^\d+$/);
      assert.match(String(r.headers['webhook-signature']), /^v1,/);
      assert.equal(r.json.type, 'backup.verified');
      assert.equal(r.json.version, 1);
    }
    // The receiver has the last request before the activity records its answer: wait for the cursor itself.
    const newest = await testEnv().db('domain_events').where({ entity_id: ids[5] }).first();
    await waitFor(async () => {
      const row = await testEnv().db('webhook_subscriptions').where({ id: sub.id }).first();
      return Number(row.delivered_through) === Number(newest.seq);
    }, 'the cursor past the newest event');
  });

  it('retries an event the receiver answered 5xx, and sends the next one only after it', async () => {
    const flaky = await subscribe(s, users.admin, rx, '/flaky');
    rx.script(({ path, attempt }) => (path === '/flaky' && attempt <= 2 ? 503 : 200));
    const [a, b] = [await verifyBackup(), await verifyBackup()];
    await waitFor(() => deliveredIds(rx, '/flaky').length >= 2, 'both delivered');
    rx.script(() => 200);
    assert.deepEqual(
      rx.at('/flaky').map((r) => [r.json.data.backupId, r.status]),
      [
        [a, 503],
        [a, 503],
        [a, 200],
        [b, 503],
        [b, 503],
        [b, 200],
      ],
    );
    // The receiver answers before the activity records the answer: wait until the last delivery is recorded.
    const attempts = await waitFor(async () => {
      const rows = await testEnv()
        .db('webhook_deliveries as d')
        .join('domain_events as e', 'e.seq', 'd.event_seq')
        .whereIn('e.entity_id', [a, b])
        .where('d.subscription_id', flaky.id)
        .orderBy('d.event_seq')
        .select('d.state', 'd.attempts', 'd.last_status');
      return rows.length === 2 && rows.every((r) => r.state === 'delivered') ? rows : null;
    }, 'both deliveries recorded');
    assert.deepEqual(
      attempts.map((x) => [x.state, x.attempts, x.last_status]),
      [
        ['delivered', 3, 200],
        ['delivered', 3, 200],
      ],
    );
  });

  it('dead-letters an event whose retries are spent without holding up other subscribers, and redelivers it on request', async () => {
    const dead = await subscribe(s, users.admin, rx, '/down');
    await subscribe(s, users.admin, rx, '/up');
    let down = true;
    rx.script(({ path }) => (path === '/down' && down ? 500 : 200));
    const a = await verifyBackup();
    await waitFor(() => deliveredIds(rx, '/up').includes(a), 'the healthy subscriber got the event');
    const letters = await waitFor(async () => {
      const res = await s.p.api('GET', `/api/v1/webhook-subscriptions/${dead.id}/dead-letters`, { key: users.admin.apiKey });
      return res.body.items?.length ? res.body.items : null;
    }, 'a dead letter');
    assert.equal(letters.length, 1);
    assert.equal(letters[0].type, 'backup.verified');
    assert.equal(letters[0].lastStatus, 500);
    assert.ok(letters[0].attempts >= 2);
    down = false;
    const b = await verifyBackup();
    await waitFor(() => deliveredIds(rx, '/down').includes(b), 'the next event goes out after the dead letter');
    assert.ok(!deliveredIds(rx, '/down').includes(a));

    const bad = await s.p.api('POST', `/api/v1/webhook-subscriptions/${dead.id}/redeliver`, { key: users.operator.apiKey, body: {} });
    assert.equal(bad.status, 403);
    const redeliver = await s.p.api('POST', `/api/v1/webhook-subscriptions/${dead.id}/redeliver`, {
      key: users.admin.apiKey,
      body: { eventIds: [letters[0].eventId] },
    });
    assert.equal(redeliver.status, 202);
    assert.equal(redeliver.body.requested, 1);
    await waitFor(() => deliveredIds(rx, '/down').includes(a), 'the redelivered event');
    assert.deepEqual(deliveredIds(rx, '/down'), [b, a]);
    const after = await s.p.api('GET', `/api/v1/webhook-subscriptions/${dead.id}/dead-letters`, { key: users.admin.apiKey });
    assert.deepEqual(after.body.items, []);
  });

  it('signs with both secrets during a rotation overlap, and with the new one alone once the overlap has passed', async () => {
    const sub = await subscribe(s, users.admin, rx, '/rotating');
    const rotated = await s.p.api('POST', `/api/v1/webhook-subscriptions/${sub.id}/rotate-secret`, { key: users.admin.apiKey });
    assert.equal(rotated.status, 200);
    assert.notEqual(rotated.body.secret, sub.secret);
    assert.ok(new Date(rotated.body.previousSecretExpiresAt).getTime() > Date.now());
    rx.trust('/rotating', sub.secret, rotated.body.secret);
    const a = await verifyBackup();
    await waitFor(() => deliveredIds(rx, '/rotating').includes(a), 'delivery during the overlap');
    assert.deepEqual(rx.at('/rotating')[0].verifiedWith, [sub.secret, rotated.body.secret]);
    assert.equal(String(rx.at('/rotating')[0].headers['webhook-signature']).split(' ').length, 2);

    await testEnv()
      .db('webhook_subscriptions')
      .where({ id: sub.id })
      .update({ previous_secret_expires_at: new Date(Date.now() - 1000) });
    const b = await verifyBackup();
    await waitFor(() => deliveredIds(rx, '/rotating').includes(b), 'delivery after the overlap');
    assert.deepEqual(rx.at('/rotating')[1].verifiedWith, [rotated.body.secret]);
    const listed = await s.p.api('GET', '/api/v1/webhook-subscriptions', { key: users.admin.apiKey });
    assert.equal(listed.status, 200);
    assert.ok(!JSON.stringify(listed.body).includes('whsec_'), 'secrets are shown once, never listed');
  });

  it('publishes IDs and states only: no names, notes, comments or titles reach a subscriber', async () => {
    await subscribe(s, users.admin, rx, '/phi', ['summary.approved', 'task.assigned', 'sample.rejected']);
    const db = testEnv().appDb;
    const patientId = randomUUID();
    const accession = `ACC-${randomUUID().slice(0, 6)}`;
    await db.transaction(async (trx) => {
      await appendAudit(trx, {
        actor: 'clin',
        action: 'summary.approved',
        entityType: 'patient',
        entityId: patientId,
        details: { summaryId: 'sum-1', round: 1, comment: 'Jane Roe looks well', notes: 'Jane Roe, BP 120/80' },
      });
      await openTask(trx, {
        taskKey: `phi-test:${patientId}`,
        workflowId: `soap-summary:${patientId}:x`,
        entityType: 'patient',
        entityId: patientId,
        kind: 'summary.review',
        title: 'Review the summary of Jane Roe',
        assignee: { kind: 'role', role: 'clinician' },
      });
      await appendAudit(trx, {
        actor: 'tech',
        action: 'sample.rejected',
        entityType: 'sample',
        entityId: accession,
        details: { code: 'HEM', condition: 'Jane Roe sample haemolysed', comment: 'call Jane Roe' },
      });
      // An audited action that is not a domain event publishes nothing.
      await appendAudit(trx, {
        actor: 'x',
        action: 'patient.created',
        entityType: 'patient',
        entityId: patientId,
        details: { name: 'Jane Roe' },
      });
    });
    await waitFor(() => rx.at('/phi').length >= 3, 'three deliveries');
    assert.deepEqual(
      rx.at('/phi').map((r) => r.json.type),
      ['summary.approved', 'task.assigned', 'sample.rejected'],
    );
    for (const r of rx.at('/phi')) {
      assert.ok(!r.body.includes('Jane Roe'), `${r.json.type} carries no PHI`);
      const schema = DOMAIN_EVENT_SCHEMAS[r.json.type as keyof typeof DOMAIN_EVENT_SCHEMAS].schema;
      assert.deepEqual(Object.keys(r.json.data).sort(), Object.keys(schema.shape).sort());
    }
    assert.deepEqual(rx.at('/phi')[0].json.data, { patientId, summaryId: 'sum-1', round: 1 });
    assert.deepEqual(rx.at('/phi')[2].json.data, { accession, rejectionCode: 'HEM' });
    const events = await testEnv().db('domain_events').where({ entity_id: patientId }).pluck('type');
    assert.deepEqual(events.sort(), ['summary.approved', 'task.assigned']);
  });

  it('writes an event only with its change: a retried audit write or a rolled-back transaction publishes nothing', async () => {
    const db = testEnv().appDb;
    const id = randomUUID();
    const write = (trx: Parameters<Parameters<typeof db.transaction>[0]>[0]) =>
      appendAudit(trx, {
        actor: 'b',
        action: 'backup.verified',
        entityType: 'backup',
        entityId: id,
        details: { encrypted: false },
        idempotencyKey: `k-${id}`,
      });
    await db.transaction(write);
    await db.transaction(write);
    await assert.rejects(
      db.transaction(async (trx) => {
        await appendAudit(trx, { actor: 'b', action: 'backup.verified', entityType: 'backup', entityId: `${id}-rolled-back`, details: {} });
        throw new Error('the business change failed');
      }),
    );
    assert.equal((await testEnv().db('domain_events').where({ entity_id: id })).length, 1);
    assert.equal(
      (
        await testEnv()
          .db('domain_events')
          .where({ entity_id: `${id}-rolled-back` })
      ).length,
      0,
    );
    await assert.rejects(testEnv().appDb('domain_events').where({ entity_id: id }).delete(), /permission denied|append-only/);
  });

  it('pages the event history by type and sequence for admin, IT operators and QA managers only', async () => {
    const before = await s.p.api('GET', '/api/v1/events?type=backup.verified&limit=500', { key: users.operator.apiKey });
    assert.equal(before.status, 200);
    const last = (await testEnv().db('domain_events').max('seq as m').first())!.m;
    const ids = [await verifyBackup(), await verifyBackup(), await verifyBackup()];
    const page1 = await s.p.api('GET', `/api/v1/events?type=backup.verified&after=${last}&limit=2`, { key: users.operator.apiKey });
    assert.equal(page1.status, 200);
    assert.deepEqual(
      page1.body.items.map((e: { entityId: string }) => e.entityId),
      ids.slice(0, 2),
    );
    assert.equal(page1.body.next, page1.body.items[1].seq);
    const page2 = await s.p.api('GET', `/api/v1/events?type=backup.verified&after=${page1.body.next}&limit=2`, { key: users.admin.apiKey });
    assert.deepEqual(
      page2.body.items.map((e: { entityId: string }) => e.entityId),
      [ids[2]],
    );
    assert.equal(page2.body.next, null);
    assert.deepEqual(Object.keys(page2.body.items[0]).sort(), [
      'data',
      'entityId',
      'entityType',
      'id',
      'occurredAt',
      'seq',
      'type',
      'version',
    ]);

    assert.equal((await s.p.api('GET', '/api/v1/events', { key: users.tech.apiKey })).status, 403);
    const badType = await s.p.api('GET', '/api/v1/events?type=patient.created', { key: users.admin.apiKey });
    assert.equal(badType.status, 400);
    assert.equal((await s.p.api('GET', '/api/v1/events?limit=0', { key: users.admin.apiKey })).status, 400);
    const schemas = await s.p.api('GET', '/api/v1/events/schemas', { key: users.admin.apiKey });
    assert.equal(schemas.body['backup.verified'].version, 1);
  });

  it('refuses subscription URLs at loopback, private and link-local ranges or labflow itself (422 naming the rule), and bad bodies (400)', async () => {
    const refused = async (url: string, rule: string) => {
      const res = await s.p.api('POST', '/api/v1/webhook-subscriptions', {
        key: users.admin.apiKey,
        body: { url, eventTypes: ['capa.closed'] },
      });
      assert.equal(res.status, 422, `${url}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.rule, rule);
      assert.equal(res.body.type, `urn:labflow:problem:webhook-url-${rule}`);
    };
    const countBefore = (await testEnv().db('webhook_subscriptions')).length;
    await refused('http://localhost:9/hook', 'loopback');
    await refused('http://[::1]:9/hook', 'loopback');
    await refused('http://10.1.2.3/hook', 'private-range');
    await refused('https://192.168.0.10/hook', 'private-range');
    await refused('http://169.254.169.254/latest/meta-data', 'link-local');
    await refused(`${s.p.baseUrl}/api/v1/healthz`, 'labflow-itself');
    await refused('http://labflow.test/hook', 'labflow-itself');
    await refused('ftp://files.example/hook', 'scheme');
    await refused('http://user:pw@127.0.0.1:9/hook', 'credentials');
    const post = (body: unknown, key = users.admin.apiKey) => s.p.api('POST', '/api/v1/webhook-subscriptions', { key, body });
    assert.equal((await post({ url: 'not a url', eventTypes: ['capa.closed'] })).status, 400);
    assert.equal((await post({ url: rx.url('/x'), eventTypes: ['patient.created'] })).status, 400);
    assert.equal((await post({ url: rx.url('/x'), eventTypes: [] })).status, 400);
    assert.equal((await post({ url: rx.url('/x'), eventTypes: ['capa.closed'] }, users.operator.apiKey)).status, 403);
    assert.equal((await testEnv().db('webhook_subscriptions')).length, countBefore, 'nothing written');

    const sub = await subscribe(s, users.admin, rx, '/patched', ['capa.closed']);
    const patch = await s.p.api('PATCH', `/api/v1/webhook-subscriptions/${sub.id}`, {
      key: users.admin.apiKey,
      body: { url: 'http://10.0.0.1/x' },
    });
    assert.equal(patch.status, 422);
    assert.equal(
      (await s.p.api('GET', `/api/v1/webhook-subscriptions/${sub.id}`, { key: users.admin.apiKey })).body.url,
      rx.url('/patched'),
    );
    assert.equal(
      (await s.p.api('PATCH', `/api/v1/webhook-subscriptions/${randomUUID()}`, { key: users.admin.apiKey, body: { enabled: true } }))
        .status,
      404,
    );
    assert.equal((await s.p.api('DELETE', `/api/v1/webhook-subscriptions/${sub.id}`, { key: users.admin.apiKey })).status, 204);
    assert.equal((await s.p.api('GET', `/api/v1/webhook-subscriptions/${sub.id}`, { key: users.admin.apiKey })).status, 404);
  });
});

describe('outbound webhooks: a subscription failing for the whole failure period', () => {
  let s: Setup;
  let rx: Receiver;
  let admin: TestUser;

  before(async () => {
    s = await startWebhookPlatform({ retryFor: '1h', disableAfter: '1500ms' });
    rx = await startReceiver();
    ({ admin } = await makeUsers({ admin: ['admin'] }));
  });
  after(async () => {
    await s?.stop();
    await rx?.close();
  });

  it('is disabled with an alert to the admins, and resumes where it stopped once an admin enables it', async () => {
    const sub = await subscribe(s, admin, rx, '/failing');
    let failing = true;
    rx.script(() => (failing ? 502 : 200));
    const a = await verifyBackup();
    const disabled = await waitFor(async () => {
      const res = await s.p.api('GET', `/api/v1/webhook-subscriptions/${sub.id}`, { key: admin.apiKey });
      return res.body.state === 'disabled' ? res.body : null;
    }, 'the subscription disabled');
    assert.match(disabled.disabledReason, /every delivery failed since/);
    const alert = await testEnv().db('notifications').where({ user_id: admin.actor.userId, kind: 'webhook.subscription_disabled' }).first();
    assert.ok(alert, 'the admin is alerted');
    assert.ok(alert.body.includes(sub.id));
    const audit = await testEnv().db('audit_events').where({ entity_id: sub.id, action: 'webhook.subscription_disabled' }).first();
    assert.ok(audit);
    const run = await testEnv().client.workflow.getHandle(`webhook-delivery:${sub.id}`).result();
    assert.equal(run, 'disabled');

    failing = false;
    const enabled = await s.p.api('PATCH', `/api/v1/webhook-subscriptions/${sub.id}`, { key: admin.apiKey, body: { enabled: true } });
    assert.equal(enabled.status, 200);
    assert.equal(enabled.body.state, 'enabled');
    assert.equal(enabled.body.failingSince, null);
    await waitFor(() => rx.at('/failing').some((r) => r.status === 200 && r.json.data.backupId === a), 'the held event delivered');
  });
});

describe('outbound webhooks: receivers that hang, redirect or are gone', () => {
  let s: Setup;
  let rx: Receiver;
  let admin: TestUser;

  before(async () => {
    // Retries for an hour: the slow and the redirected receiver are delivered by a retry, however loaded the machine.
    s = await startWebhookPlatform({ retryFor: '1h' });
    rx = await startReceiver();
    ({ admin } = await makeUsers({ admin: ['admin'] }));
  });
  after(async () => {
    await s?.stop();
    await rx?.close();
  });

  it('retries a receiver that hangs past the timeout or redirects (never following it), and disables one that answers 410 Gone at once', async () => {
    const slow = await subscribe(s, admin, rx, '/slow');
    const moved = await subscribe(s, admin, rx, '/moved');
    const gone = await subscribe(s, admin, rx, '/gone');
    // The request timeout here is 2 s: the first attempt hangs for 10 s, the next is answered at once.
    rx.script(({ path, attempt }) => {
      if (path === '/slow') return attempt === 1 ? { status: 200, delayMs: 10_000 } : 200;
      if (path === '/moved') return attempt === 1 ? { status: 307, location: rx.url('/elsewhere') } : 200;
      if (path === '/gone') return 410;
      return 200;
    });
    const a = await verifyBackup();
    await waitFor(() => deliveredIds(rx, '/moved').includes(a), 'delivered after the redirect');
    await waitFor(() => rx.at('/slow').length >= 2 && rx.at('/slow')[1].status === 200, 'delivered after the timeout', 60_000);
    const states = async (id: string) =>
      testEnv()
        .db('webhook_deliveries as d')
        .join('domain_events as e', 'e.seq', 'd.event_seq')
        .where({ 'd.subscription_id': id, 'e.entity_id': a })
        .first('d.state', 'd.attempts', 'd.last_status', 'd.last_error');
    const slowRow = await waitFor(async () => {
      const row = await states(slow.id);
      return row?.state === 'delivered' ? row : null;
    }, 'the slow delivery recorded');
    assert.equal(slowRow.attempts, 2);
    const movedRow = await waitFor(async () => {
      const row = await states(moved.id);
      return row?.state === 'delivered' ? row : null;
    }, 'the redirected delivery recorded');
    assert.equal(movedRow.attempts, 2);
    assert.deepEqual(rx.at('/elsewhere'), [], 'the redirect was not followed');

    const goneSub = await waitFor(async () => {
      const res = await s.p.api('GET', `/api/v1/webhook-subscriptions/${gone.id}`, { key: admin.apiKey });
      return res.body.state === 'disabled' ? res.body : null;
    }, 'the gone subscription disabled');
    assert.match(goneSub.disabledReason, /410 Gone/);
    assert.equal(rx.at('/gone').length, 1, 'one 410 is enough: no retry');
    rx.script(() => 200);
  });
});
