import assert from 'node:assert/strict';
import { webhookSignature } from '../../api/routes/sample-intake-webhooks';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { callInState, enter, logAttempt } from '../critical-calls/support';
import { testCode } from '../results/support';
import { GOOD_SERUM, PATIENT, auditActions, getSample, hoursAgo, mustAct, tag } from './support';

describe('sample intake webhooks from instruments and external LIMS', () => {
  let p: Platform;
  let u: Record<'admin' | 'tech' | 'contact' | 'provider', TestUser>;
  let source: string;
  let secret: string;
  before(async () => {
    p = await startPlatform();
    u = await makeUsers({ admin: ['admin'], tech: ['lab_technician'], contact: ['clinician'], provider: ['clinician'] });
    source = `lims-${tag()}`;
    const res = await p.api('POST', '/api/v1/sample-sources', { key: u.admin.apiKey, body: { name: source, contact: u.contact.username } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    secret = res.body.secret;
  });
  after(() => p.stop());

  const post = (body: unknown, opts: { secret?: string; timestamp?: number; to?: string; raw?: string } = {}) => {
    const raw = opts.raw ?? JSON.stringify(body);
    const timestamp = String(opts.timestamp ?? Math.floor(Date.now() / 1000));
    return p.api('POST', `/api/v1/webhooks/${opts.to ?? source}`, {
      raw,
      headers: {
        'x-labflow-timestamp': timestamp,
        'x-labflow-signature': `sha256=${webhookSignature(opts.secret ?? secret, timestamp, raw)}`,
      },
    });
  };
  const byExternal = (externalId: string) =>
    waitFor(() => testEnv().db('samples').where({ source, external_id: externalId }).first(), `sample ${externalId}`);
  const events = async () => Number((await testEnv().db('sample_webhook_events').where({ source }).count({ n: '*' }).first())!.n);

  it('registers an order and applies its shipment and receipt, each through the signed webhook', async () => {
    const externalId = `EXT-${tag()}`;
    const order = await post({
      eventId: `e-${tag()}`,
      type: 'order',
      sample: { externalId, sampleType: 'WB_EDTA', tests: ['CBC'], patient: PATIENT, collectedAt: hoursAgo(2) },
    });
    assert.equal(order.status, 202, JSON.stringify(order.body));
    const row = await byExternal(externalId);
    assert.match(row.accession, /^ACC-\d{8}$/);
    await post({ eventId: `e-${tag()}`, type: 'sample.shipped', sample: { externalId }, location: 'Ward 4' });
    await waitFor(async () => (await getSample(p, u.tech, row.accession)).state === 'in_transit', 'in transit');
    await post({ eventId: `e-${tag()}`, type: 'sample.received', sample: { externalId }, location: 'Receiving dock', temperatureC: 5 });
    const received = await waitFor(async () => {
      const s = await getSample(p, u.tech, row.accession);
      return s.state === 'received' && s;
    }, 'received');
    assert.equal(received.receivedBy, `system:${source}`);
    assert.equal(received.receivedLocation, 'Receiving dock');
    // The run answers queries as soon as it has applied the event; its custody row is written right after.
    const trail = await waitFor(async () => {
      const items = (await p.api('GET', `/api/v1/samples/${row.accession}/custody`, { key: u.tech.apiKey })).body.items;
      return items.length === 2 ? items : null;
    }, 'custody trail');
    assert.deepEqual(
      trail.map((e: { event: string }) => e.event),
      ['shipped', 'received'],
    );
    assert.equal(row.submitter_id, u.contact.actor.userId, 'the source’s contact is the submitter');
  });

  it('acknowledges a webhook delivered twice once and applies it once', async () => {
    const externalId = `EXT-${tag()}`;
    await post({ eventId: `e-${tag()}`, type: 'order', sample: { externalId, sampleType: 'SERUM', tests: ['CMP'], patient: PATIENT } });
    const row = await byExternal(externalId);
    const received = { eventId: `recv-${tag()}`, type: 'sample.received', sample: { externalId }, location: 'Dock' };
    const first = await post(received);
    const second = await post(received);
    assert.equal(first.status, 202);
    assert.equal(second.status, 200);
    assert.equal(second.body.status, 'duplicate');
    await waitFor(async () => (await auditActions(row.accession)).includes('sample.received'), 'received');
    // The redelivery came before the first was applied: it signals the run again (after the order's and the first
    // receipt's signals). Wait until the run has taken that third signal in and has no work left, so that anything
    // it would have done is done.
    if (!second.body.applied) {
      const handle = testEnv().client.workflow.getHandle(row.workflow_id);
      await waitFor(async () => {
        const { events } = await handle.fetchHistory();
        const signals = (events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes).length;
        if (signals !== 3) return false;
        const { raw } = await handle.describe();
        return !raw.pendingWorkflowTask && !raw.pendingActivities?.length;
      }, 'the redelivered receipt handled by the run');
    }
    assert.equal((await auditActions(row.accession)).filter((a) => a === 'sample.received').length, 1);
    const trail = (await p.api('GET', `/api/v1/samples/${row.accession}/custody`, { key: u.tech.apiKey })).body.items;
    assert.equal(trail.length, 1);
  });

  it('refuses a bad signature, a signature made with another secret, an unknown source and an old timestamp with 401, recording nothing', async () => {
    const before = await events();
    const body = { eventId: `e-${tag()}`, type: 'order', sample: { externalId: `EXT-${tag()}`, sampleType: 'SERUM' } };
    const raw = JSON.stringify(body);
    const ts = String(Math.floor(Date.now() / 1000));
    const tampered = await p.api('POST', `/api/v1/webhooks/${source}`, {
      raw: raw.replace('SERUM', 'URINE'),
      headers: { 'x-labflow-timestamp': ts, 'x-labflow-signature': `sha256=${webhookSignature(secret, ts, raw)}` },
    });
    assert.equal(tampered.status, 401);
    assert.equal(tampered.body.type, 'urn:labflow:problem:webhook-signature-invalid');
    assert.equal((await post(body, { secret: 'whsec_guess' })).status, 401);
    assert.equal((await post(body, { to: 'nobody' })).status, 401);
    const old = await post(body, { timestamp: Math.floor(Date.now() / 1000) - 6 * 60 });
    assert.equal(old.status, 401);
    assert.equal(old.body.type, 'urn:labflow:problem:webhook-timestamp-out-of-range');
    const future = await post(body, { timestamp: Math.floor(Date.now() / 1000) + 6 * 60 });
    assert.equal(future.status, 401);
    const unsigned = await p.api('POST', `/api/v1/webhooks/${source}`, { raw });
    assert.equal(unsigned.status, 401);
    assert.equal(await events(), before, 'no event recorded');
  });

  it('answers 400 for a signed body that is not JSON or misses the event ID', async () => {
    assert.equal((await post(null, { raw: '{"eventId":' })).status, 400);
    const missing = await post({ type: 'order', sample: { externalId: 'X' } });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.errors[0].field, 'body.eventId');
  });

  it('holds an order with an unknown sample type or unknown test codes for a person instead of dropping it', async () => {
    const typeEvent = `e-${tag()}`;
    const testEvent = `e-${tag()}`;
    assert.equal(
      (await post({ eventId: typeEvent, type: 'order', sample: { externalId: `EXT-${tag()}`, sampleType: 'SALIVA', tests: ['CMP'] } }))
        .status,
      202,
    );
    assert.equal(
      (
        await post({
          eventId: testEvent,
          type: 'order',
          sample: { externalId: `EXT-${tag()}`, sampleType: 'SERUM', tests: ['CMP', 'XYZ9'] },
        })
      ).status,
      202,
    );
    const held = await waitFor(async () => {
      const rows: { event_id: string; reason: string }[] = await testEnv()
        .db('sample_held_orders')
        .where({ source })
        .whereIn('event_id', [typeEvent, testEvent])
        .orderBy('created_at');
      return rows.length === 2 ? rows : null;
    }, 'held orders');
    assert.match(held.find((h) => h.event_id === typeEvent)!.reason, /sample type SALIVA/);
    assert.match(held.find((h) => h.event_id === testEvent)!.reason, /test XYZ9/);
    const listed = await p.api('GET', '/api/v1/sample-held-orders', { key: u.tech.apiKey });
    assert.ok(listed.body.items.some((h: { event_id: string }) => h.event_id === typeEvent));
    const tasks = await p.api('GET', '/api/v1/tasks?mine=1&state=open&entityType=sample_order&limit=200', { key: u.tech.apiKey });
    assert.ok(tasks.body.items.filter((t: { kind: string }) => t.kind === 'sample.held_order').length >= 2);
  });

  it('registers a specimen that arrives without an order, held until one comes', async () => {
    const externalId = `EXT-${tag()}`;
    await post({
      eventId: `e-${tag()}`,
      type: 'sample.received',
      sample: { externalId, sampleType: 'URINE' },
      location: 'Dock',
      temperatureC: 4,
    });
    const row = await byExternal(externalId);
    const state = await waitFor(async () => {
      const s = await getSample(p, u.tech, row.accession);
      return s.state === 'received' && s;
    }, 'received');
    assert.deepEqual(state.requestedTests, []);
    await post({ eventId: `e-${tag()}`, type: 'order', sample: { externalId, sampleType: 'URINE', tests: ['UA'] } });
    await waitFor(async () => (await getSample(p, u.tech, row.accession)).requestedTests.includes('UA'), 'order attached');
  });

  describe('the order’s ordering provider', () => {
    const order = async (orderingProvider: string) => {
      const externalId = `EXT-${tag()}`;
      const res = await post({
        eventId: `e-${tag()}`,
        type: 'order',
        sample: { externalId, sampleType: 'SERUM', tests: ['TSH'], patient: PATIENT, collectedAt: hoursAgo(1), orderingProvider },
      });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      return byExternal(externalId);
    };
    const taskOf = (accession: string) =>
      testEnv().db('tasks').where({ task_key: `sample-ordering-provider:${accession}` }).first('state', 'kind', 'assignee_role', 'title');

    it('stores a provider who is an active clinician on the sample, with no task', async () => {
      const row = await order(u.provider.username);
      assert.equal(row.ordering_provider_id, u.provider.actor.userId);
      assert.equal((await getSample(p, u.tech, row.accession)).orderingProvider.username, u.provider.username);
      assert.equal((await taskOf(row.accession)) ?? null, null);
      assert.ok(!(await auditActions(row.accession)).includes('sample.ordering_provider_unresolved'));
    });

    it('registers the sample without a provider it does not know or who is not a clinician, audits why and asks the lab to set one', async () => {
      for (const [named, reason] of [
        [`dr-unknown-${tag()}`, 'unknown'],
        [u.tech.username, 'not_clinician'],
      ]) {
        const row = await order(named);
        assert.equal(row.ordering_provider_id, null);
        const audit = await waitFor(
          () => testEnv().db('audit_events').where({ entity_type: 'sample', entity_id: row.accession, action: 'sample.ordering_provider_unresolved' }).first('details', 'actor'),
          'unresolved provider audited',
        );
        assert.deepEqual(audit.details, { named, reason, source });
        assert.equal(audit.actor, `system:${source}`);
        const task = await taskOf(row.accession);
        assert.deepEqual([task.state, task.kind, task.assignee_role], ['open', 'sample.ordering_provider', 'lab_technician']);
        assert.ok(task.title.includes(named), task.title);
        // The specimen’s intake goes on: its run starts as for any order.
        await waitFor(async () => (await getSample(p, u.tech, row.accession)).live === true, 'run started');
      }
    });

    it('lets the lab set the provider afterwards, which closes the task', async () => {
      const row = await order(`dr-unknown-${tag()}`);
      const res = await p.api('PUT', `/api/v1/samples/${row.accession}/ordering-provider`, {
        key: u.tech.apiKey,
        body: { orderingProvider: u.provider.username, reason: 'Ward confirmed the ordering physician by phone' },
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal((await testEnv().db('samples').where({ id: row.id }).first('ordering_provider_id')).ordering_provider_id, u.provider.actor.userId);
      assert.equal((await taskOf(row.accession)).state, 'done');
    });
  });

  describe('resolving a held order', () => {
    const holdOrder = async (sample: Record<string, unknown>) => {
      const eventId = `e-${tag()}`;
      assert.equal((await post({ eventId, type: 'order', sample: { patient: PATIENT, collectedAt: hoursAgo(1), ...sample } })).status, 202);
      return waitFor(() => testEnv().db('sample_held_orders').where({ source, event_id: eventId }).first(), `held ${eventId}`);
    };
    const resolve = (id: string, body: unknown, user = u.tech) =>
      p.api('POST', `/api/v1/sample-held-orders/${id}/resolve`, { key: user.apiKey, body });
    const taskOf = (id: string) =>
      testEnv()
        .db('tasks')
        .where({ task_key: `sample-held-order:${id}` })
        .first('state', 'closed_by');

    it('maps unknown codes to known ones and releases the order as the webhook would have, closing its task', async () => {
      const externalId = `EXT-${tag()}`;
      const held = await holdOrder({ externalId, sampleType: 'SALIVA', tests: ['CMP', 'XYZ9'] });
      const res = await resolve(held.id, {
        action: 'release',
        sampleType: 'SERUM',
        tests: { XYZ9: 'TSH' },
        comment: 'LIMS code map is stale',
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.state, 'resolved');
      assert.match(res.body.accession, /^ACC-\d{8}$/);
      const row = await byExternal(externalId);
      assert.equal(row.accession, res.body.accession);
      assert.equal(row.sample_type, 'SERUM');
      assert.deepEqual(row.requested_tests, ['CMP', 'TSH']);
      await waitFor(async () => (await getSample(p, u.tech, row.accession)).state === 'expected', 'run started');
      const after = await testEnv().db('sample_held_orders').where({ id: held.id }).first();
      assert.equal(after.state, 'resolved');
      assert.equal(after.accession, row.accession);
      assert.equal((await taskOf(held.id)).state, 'done');
      const audit = await testEnv()
        .db('audit_events')
        .where({ entity_type: 'sample_order', entity_id: `${source}:${externalId}`, action: 'sample.order_released' })
        .first('details', 'actor');
      assert.equal(audit.details.accession, row.accession);
      assert.deepEqual(audit.details.tests, { XYZ9: 'TSH' });
      // Resolved once: a second resolution is a conflict.
      assert.equal((await resolve(held.id, { action: 'dismiss', reason: 'duplicate' })).status, 409);
    });

    it('releases a held order with the ordering provider the resolution gives, or the clinician the order named', async () => {
      const externalId = `EXT-${tag()}`;
      const held = await holdOrder({ externalId, sampleType: 'SALIVA', tests: ['CMP'], orderingProvider: `dr-unknown-${tag()}` });
      const res = await resolve(held.id, { action: 'release', sampleType: 'SERUM', orderingProvider: u.provider.username });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const row = await byExternal(externalId);
      assert.equal(row.ordering_provider_id, u.provider.actor.userId);
      assert.equal((await testEnv().db('tasks').where({ task_key: `sample-ordering-provider:${row.accession}` }).first()) ?? null, null);
      const audit = await testEnv()
        .db('audit_events')
        .where({ entity_type: 'sample_order', entity_id: `${source}:${externalId}`, action: 'sample.order_released' })
        .first('details');
      assert.equal(audit.details.orderingProviderId, u.provider.actor.userId);

      const kept = `EXT-${tag()}`;
      const heldKnown = await holdOrder({ externalId: kept, sampleType: 'SALIVA', tests: ['CMP'], orderingProvider: u.contact.username });
      assert.equal((await resolve(heldKnown.id, { action: 'release', sampleType: 'SERUM' })).status, 200);
      assert.equal((await byExternal(kept)).ordering_provider_id, u.contact.actor.userId);
    });

    it('releases a held order naming a provider who is not a clinician without one, audited with a task, when the resolution gives none', async () => {
      const externalId = `EXT-${tag()}`;
      const held = await holdOrder({ externalId, sampleType: 'SALIVA', tests: ['CMP'], orderingProvider: u.tech.username });
      assert.equal((await resolve(held.id, { action: 'release', sampleType: 'SERUM' })).status, 200);
      const row = await byExternal(externalId);
      assert.equal(row.ordering_provider_id, null);
      const task = await testEnv().db('tasks').where({ task_key: `sample-ordering-provider:${row.accession}` }).first('state');
      assert.equal(task.state, 'open');
      const audit = await testEnv()
        .db('audit_events')
        .where({ entity_type: 'sample', entity_id: row.accession, action: 'sample.ordering_provider_unresolved' })
        .first('details', 'actor');
      assert.deepEqual(audit.details, { named: u.tech.username, reason: 'not_clinician', source });
      assert.equal(audit.actor, u.tech.username);
    });

    it('refuses a resolution giving a provider who is unknown or not a clinician (422), releasing nothing', async () => {
      const externalId = `EXT-${tag()}`;
      const held = await holdOrder({ externalId, sampleType: 'SALIVA', tests: ['CMP'] });
      for (const [orderingProvider, type] of [
        [`dr-unknown-${tag()}`, 'unknown-ordering-provider'],
        [u.tech.username, 'ordering-provider-not-clinician'],
      ]) {
        const res = await resolve(held.id, { action: 'release', sampleType: 'SERUM', orderingProvider });
        assert.equal(res.status, 422);
        assert.equal(res.body.type, `urn:labflow:problem:${type}`);
        assert.equal(res.body.errors[0].field, 'body.orderingProvider');
      }
      assert.equal((await testEnv().db('sample_held_orders').where({ id: held.id }).first()).state, 'held');
      assert.equal((await testEnv().db('samples').where({ source, external_id: externalId }).first()) ?? null, null);
    });

    it('dismisses a held order with a reason, closing its task, and audits it', async () => {
      const externalId = `EXT-${tag()}`;
      const held = await holdOrder({ externalId, sampleType: 'SALIVA', tests: ['CMP'] });
      const res = await resolve(held.id, { action: 'dismiss', reason: 'Test order sent by mistake' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal((await testEnv().db('sample_held_orders').where({ id: held.id }).first()).state, 'discarded');
      assert.equal((await taskOf(held.id)).state, 'cancelled');
      const audit = await testEnv()
        .db('audit_events')
        .where({ entity_type: 'sample_order', entity_id: `${source}:${externalId}`, action: 'sample.order_dismissed' })
        .first('details');
      assert.equal(audit.details.reason, 'Test order sent by mistake');
      assert.equal(await testEnv().db('samples').where({ source, external_id: externalId }).first(), undefined);
    });

    it('answers 404, 409, 422 and 403 for bad input', async () => {
      const held = await holdOrder({ externalId: `EXT-${tag()}`, sampleType: 'SALIVA', tests: ['CMP', 'XYZ9'] });
      assert.equal((await resolve('00000000-0000-4000-8000-000000000000', { action: 'dismiss', reason: 'gone' })).status, 404);
      assert.equal((await resolve('not-a-uuid', { action: 'dismiss', reason: 'gone' })).status, 400);
      const stillUnknown = await resolve(held.id, { action: 'release', tests: { XYZ9: 'TSH' } });
      assert.equal(stillUnknown.status, 422);
      assert.equal(stillUnknown.body.type, 'urn:labflow:problem:unknown-sample-type');
      const wrongTest = await resolve(held.id, { action: 'release', sampleType: 'SERUM' });
      assert.equal(wrongTest.status, 422);
      assert.equal(wrongTest.body.type, 'urn:labflow:problem:unknown-test-code');
      assert.equal((await resolve(held.id, { action: 'release', sampleType: 'SERUM', tests: { NOPE: 'TSH' } })).status, 422);
      assert.equal((await resolve(held.id, { action: 'dismiss', reason: '' })).status, 400);
      assert.equal((await resolve(held.id, { action: 'dismiss', reason: 'no' }, u.contact)).status, 403);
      assert.equal((await testEnv().db('sample_held_orders').where({ id: held.id }).first()).state, 'held');
      assert.equal((await resolve(held.id, { action: 'dismiss', reason: 'Duplicate of a corrected order' })).status, 200);
      assert.equal((await resolve(held.id, { action: 'dismiss', reason: 'again' })).status, 409);
    });

    describe('when a later delivery already registered its sample', () => {
      /** The order held (unknown sample type), then the same external ID delivered again and registered. */
      const heldThenRegistered = async (tests: string[], laterProvider?: TestUser) => {
        const externalId = `EXT-${tag()}`;
        const held = await holdOrder({ externalId, sampleType: 'SALIVA', tests });
        const later = { externalId, sampleType: 'SERUM', tests, ...(laterProvider && { orderingProvider: laterProvider.username }) };
        assert.equal((await post({ eventId: `e-${tag()}`, type: 'order', sample: { patient: PATIENT, collectedAt: hoursAgo(1), ...later } })).status, 202);
        return { externalId, held, row: await byExternal(externalId) };
      };
      const releasedAudit = (externalId: string) =>
        testEnv()
          .db('audit_events')
          .where({ entity_type: 'sample_order', entity_id: `${source}:${externalId}`, action: 'sample.order_released' })
          .first('details');
      const providerSet = (accession: string) =>
        testEnv().db('audit_events').where({ entity_type: 'sample', entity_id: accession, action: 'sample.ordering_provider_set' }).select('details', 'actor');

      it('gives that sample the provider the resolution names when it has none, audited', async () => {
        const { externalId, held, row } = await heldThenRegistered(['CMP']);
        assert.equal(row.ordering_provider_id, null);
        const res = await resolve(held.id, { action: 'release', sampleType: 'SERUM', orderingProvider: u.provider.username });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.equal(res.body.accession, row.accession);
        assert.deepEqual(res.body.orderingProvider, { outcome: 'set', current: u.provider.username });
        assert.equal((await byExternal(externalId)).ordering_provider_id, u.provider.actor.userId);
        const [set, ...more] = await providerSet(row.accession);
        assert.deepEqual(more, []);
        assert.deepEqual([set.details.from, set.details.to, set.actor], [null, { id: u.provider.actor.userId, username: u.provider.username }, u.tech.username]);
        assert.match(set.details.reason, new RegExp(`held order ${held.id}`));
        assert.deepEqual((await releasedAudit(externalId)).details.orderingProvider, { outcome: 'set', sampleProviderId: u.provider.actor.userId });
      });

      it('leaves another provider the sample already has, and says so in the answer and the audit', async () => {
        const { externalId, held, row } = await heldThenRegistered(['CMP'], u.contact);
        assert.equal(row.ordering_provider_id, u.contact.actor.userId);
        const res = await resolve(held.id, { action: 'release', sampleType: 'SERUM', orderingProvider: u.provider.username });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.deepEqual(res.body.orderingProvider, { outcome: 'kept_existing', current: u.contact.username });
        assert.equal((await byExternal(externalId)).ordering_provider_id, u.contact.actor.userId);
        assert.deepEqual(await providerSet(row.accession), []);
        const audit = await releasedAudit(externalId);
        assert.equal(audit.details.orderingProviderId, u.provider.actor.userId, 'the provider the resolution named');
        assert.deepEqual(audit.details.orderingProvider, { outcome: 'kept_existing', sampleProviderId: u.contact.actor.userId });
      });

      it('refuses (409, nothing released) to name a provider once a critical call of that sample was confirmed, as PUT …/ordering-provider does', async () => {
        const test = await testCode();
        const { externalId, held, row } = await heldThenRegistered([test]);
        await mustAct(p, u.tech, row.accession, 'receive', { location: 'Central receiving', temperatureC: 4 });
        await mustAct(p, u.tech, row.accession, 'inspect', GOOD_SERUM);
        await mustAct(p, u.tech, row.accession, 'accept');
        await mustAct(p, u.tech, row.accession, 'route', {});
        await waitFor(() => testEnv().db('analyses').where({ accession: row.accession, test_code: test }).first(), 'the analysis open');
        await enter(p, u.tech, row.accession, test, 9.9);
        await callInState(row.accession, test, 'escalated');
        const confirmed = await logAttempt(p, u.tech, row.accession, test, {
          requestId: `night-${tag()}`,
          called: { name: 'Dr Night Resident' },
          outcome: 'CONFIRMED',
          readBack: '9.9',
        });
        assert.equal(confirmed.status, 200, JSON.stringify(confirmed.body));
        await callInState(row.accession, test, 'notified');

        const res = await resolve(held.id, { action: 'release', sampleType: 'SERUM', orderingProvider: u.provider.username });
        assert.equal(res.status, 409, JSON.stringify(res.body));
        assert.equal(res.body.type, 'urn:labflow:problem:critical-call-confirmed');
        assert.equal((await testEnv().db('sample_held_orders').where({ id: held.id }).first('state')).state, 'held');
        assert.equal((await byExternal(externalId)).ordering_provider_id, null);
        assert.deepEqual(await providerSet(row.accession), []);
        assert.equal(await releasedAudit(externalId), undefined);
        // Without a provider it is released as before, and the sample keeps none.
        const plain = await resolve(held.id, { action: 'release', sampleType: 'SERUM' });
        assert.equal(plain.status, 200, JSON.stringify(plain.body));
        assert.deepEqual(plain.body.orderingProvider, { outcome: 'not_given', current: null });
      });
    });
  });
});
