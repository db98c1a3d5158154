import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import { webhookSignature } from '../../api/routes/sample-intake-webhooks';
import { FailureType } from '../../common/failures';
import type { GrantAction } from '../../common/grants';
import {
  acceptUpdate,
  acceptWithDeviationUpdate,
  aliquotUpdate,
  attachOrderUpdate,
  cancelUpdate,
  inspectUpdate,
  receiveUpdate,
  reinstateUpdate,
  rejectUpdate,
  routeUpdate,
  sampleEventSignal,
  sampleStateQuery,
  storeUpdate,
  type SampleEvent,
  type SampleIntakeState,
} from '../../common/sample-intake';
import { sampleGrantedArgs, type SampleAction } from '../../common/sample-intake-grants';
import { USED_ELSEWHERE, grantForgeries, issueTestGrant, refusalType, type Signature } from '../helpers/forgery';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { GOOD, LABEL, PATIENT, act, deliverEvent, hoursAgo, inspected, mustAct, register, tag } from './support';

type Args = Record<string, unknown>;

/**
 * An attacker who can reach the Temporal frontend sends every recording Update of sample intake, and its machine
 * event Signal, straight to the runs: with a null actor, no grant, another user's grant, a used one, an expired one
 * and one written for other arguments; events with no delivery, a made-up one, another run's, another event's or a
 * used one. Each is refused, nothing is recorded (no custody event, no audit event, no row changed), the attempt
 * is a security event, IT operators hear of it once per run, the run stays healthy, and the same action then
 * succeeds through the API (or the signed webhook).
 */
describe('forged sample-intake actions sent straight to Temporal', () => {
  let p: Platform;
  let u: Record<'doc' | 'doc2' | 'tech' | 'tech2' | 'director' | 'ivan' | 'admin', TestUser>;

  before(async () => {
    p = await startPlatform();
    u = await makeUsers({
      doc: ['clinician'],
      doc2: ['clinician'],
      tech: ['lab_technician'],
      tech2: ['lab_technician'],
      director: ['lab_director'],
      ivan: ['it_operator'],
      admin: ['admin'],
    });
  });
  after(() => p.stop());

  const db = () => testEnv().db;
  const handleOf = (workflowId: string): WorkflowHandle => testEnv().client.workflow.getHandle(workflowId);

  const issue = (who: TestUser, workflowId: string, action: GrantAction, bound: unknown, signature?: Signature) =>
    issueTestGrant(who, workflowId, action, bound, signature);

  interface Legit {
    who: TestUser;
    action: SampleAction;
    update: UpdateDefinition<SampleIntakeState, [never]>;
    args: Args;
    /** What the grant binds for these arguments (sampleGrantedArgs), and for a different set of them. */
    bound: unknown;
    otherBound: unknown;
    signature?: Signature;
  }

  /** Every kind of bad proof for one action: what to send and whether the validator or the recording step refuses. */
  async function forgeries(workflowId: string, legit: Legit, other: TestUser) {
    const { who, action, bound, otherBound, signature } = legit;
    const shaped = randomBytes(32).toString('base64url');
    const cases: { name: string; actor: unknown; grant: unknown; byValidator?: boolean }[] = [
      { name: 'a null actor', actor: null, grant: shaped, byValidator: true },
      { name: 'an actor with no roles', actor: { ...who.actor, roles: undefined }, grant: shaped, byValidator: true },
    ];
    const otherAction = { action: action === 'sample.reinstate' ? 'sample.cancel' : 'sample.reinstate', bound } as const;
    for (const c of await grantForgeries({ workflowId, who, other, action, bound, otherBound, signature, otherAction })) {
      cases.push({ ...c, actor: who.actor });
    }
    if (signature) {
      const otherHash = { ...signature, contentHash: 'f'.repeat(64) };
      cases.push({ name: 'a grant for another content hash', actor: who.actor, grant: await issue(who, workflowId, action, bound, otherHash) });
    }
    return cases;
  }

  /** What a forged action could have written: custody, audit (but security events), the rows, grants consumed. */
  async function record(accession: string, workflowId: string) {
    const pieces = db()('samples').where({ accession }).orWhere('parent_id', db()('samples').where({ accession }).select('id'));
    const [custody, audit, sample, storage, routes, signatures, tasks, grants, deliveries] = await Promise.all([
      db()('sample_custody_events').whereIn('sample_id', pieces.clone().select('id')).count('* as n').first(),
      db()('audit_events')
        .where({ entity_type: 'sample', entity_id: accession })
        .whereNot('action', 'security.grant_refused')
        .orderBy('seq')
        .pluck('action'),
      db()('samples')
        .where({ accession })
        .first(
          'state',
          'stage',
          'received_by',
          'received_at',
          'inspection',
          'has_order',
          'requested_tests',
          'rejected_tests',
          'cancel_reason',
          'deviation_comment',
        ),
      db()('sample_storage').whereIn('sample_id', pieces.clone().select('id')).count('* as n').first(),
      db()('sample_routes')
        .where({ sample_id: db()('samples').where({ accession }).select('id') })
        .orderBy('test_code')
        .select('test_code', 'state'),
      db()('signatures').where({ entity_type: 'sample', entity_id: accession }).count('* as n').first(),
      db()('tasks').where({ workflow_id: workflowId }).orderBy('task_key').select('task_key', 'state'),
      db()('action_grants')
        .where({ workflow_id: workflowId })
        .whereNotNull('consumed_at')
        .whereNot('consumed_by', USED_ELSEWHERE)
        .count('* as n')
        .first(),
      db()('sample_webhook_events')
        .where({ signalled_to: workflowId })
        .whereNotNull('recorded_by')
        .whereNot('recorded_by', USED_ELSEWHERE)
        .count('* as n')
        .first(),
    ]);
    return {
      custody: Number(custody?.n),
      audit,
      sample,
      storage: Number(storage?.n),
      routes,
      signatures: Number(signatures?.n),
      tasks,
      consumedGrants: Number(grants?.n),
      recordedDeliveries: Number(deliveries?.n),
    };
  }

  const securityEvents = async (workflowId: string) =>
    db()('audit_events')
      .where({ action: 'security.grant_refused' })
      .whereRaw(`details->>'workflowId' = ?`, [workflowId])
      .orderBy('seq')
      .select('details');

  const alertsFor = (accession: string) =>
    testEnv().mails.filter((m) => m.to.some((to) => to.includes(u.ivan.username)) && (m.subject ?? '').includes(`specimen ${accession}`));

  /** Sends each forgery of the action and proves it refused and unrecorded; answers how many reached the recording step. */
  async function refuseAll(at: { accession: string; workflowId: string }, legit: Legit, other: TestUser): Promise<number> {
    const handle = handleOf(at.workflowId);
    const before = await record(at.accession, at.workflowId);
    const stateBefore = await handle.query(sampleStateQuery);
    let byActivity = 0;
    for (const forgery of await forgeries(at.workflowId, legit, other)) {
      const args = { ...legit.args, actor: forgery.actor, grant: forgery.grant };
      const type = await refusalType(handle.executeUpdate(legit.update as UpdateDefinition<SampleIntakeState, [Args]>, { args: [args] }));
      assert.equal(type, FailureType.GrantRefused, `${legit.action} with ${forgery.name}`);
      if (!forgery.byValidator) byActivity += 1;
      assert.deepEqual(await record(at.accession, at.workflowId), before, `${legit.action} with ${forgery.name} recorded something`);
    }
    assert.deepEqual(await handle.query(sampleStateQuery), stateBefore, `${legit.action}: the run gave back what the refused actions took`);
    assert.equal((await handle.describe()).status.name, 'RUNNING', 'the run stays healthy');
    return byActivity;
  }

  const legit = (
    who: TestUser,
    action: SampleAction,
    update: unknown,
    args: Args,
    bound: unknown,
    otherBound: unknown,
    signature?: Signature,
  ): Legit => ({
    who,
    action,
    update: update as Legit['update'],
    args,
    bound,
    otherBound,
    signature,
  });

  it('refuses every forged bench action from receipt to reinstatement; the API then does each', async () => {
    const sample = await register(p, u.doc);
    const { accession, workflowId } = sample;
    let refusals = 0;

    const receipt = { by: u.tech.username, receivedAt: new Date().toISOString(), location: 'Central receiving', temperatureC: 4 };
    refusals += await refuseAll(
      sample,
      legit(
        u.tech,
        'sample.receive',
        receiveUpdate,
        receipt,
        sampleGrantedArgs.receive(receipt),
        sampleGrantedArgs.receive({ ...receipt, location: 'Elsewhere' }),
      ),
      u.tech2,
    );
    await mustAct(p, u.tech, accession, 'receive', { location: 'Central receiving', temperatureC: 4 });

    refusals += await refuseAll(
      sample,
      legit(
        u.tech,
        'sample.inspect',
        inspectUpdate,
        { findings: GOOD },
        sampleGrantedArgs.inspect({ findings: GOOD }),
        sampleGrantedArgs.inspect({ findings: { ...GOOD, volumeMl: 9 } }),
      ),
      u.tech2,
    );
    await mustAct(p, u.tech, accession, 'inspect', { ...GOOD, identifiers: LABEL });

    refusals += await refuseAll(
      sample,
      legit(u.tech, 'sample.accept', acceptUpdate, {}, sampleGrantedArgs.accept(), { other: true }),
      u.tech2,
    );
    await mustAct(p, u.tech, accession, 'accept');

    const volumes = { volumesMl: [1, 1] };
    refusals += await refuseAll(
      sample,
      legit(
        u.tech,
        'sample.aliquot',
        aliquotUpdate,
        volumes,
        sampleGrantedArgs.aliquot(volumes),
        sampleGrantedArgs.aliquot({ volumesMl: [2] }),
      ),
      u.tech2,
    );
    await mustAct(p, u.tech, accession, 'aliquot', volumes);

    const place = { piece: `${accession}-A1`, freezer: `F-${tag()}`, rack: 'R1', box: 'B1', position: 'A1' };
    refusals += await refuseAll(
      sample,
      legit(
        u.tech,
        'sample.store',
        storeUpdate,
        place,
        sampleGrantedArgs.store(place),
        sampleGrantedArgs.store({ ...place, position: 'A2' }),
      ),
      u.tech2,
    );
    await mustAct(p, u.tech, accession, 'store', place);

    const routing = { tests: [{ test: 'CMP', piece: `${accession}-A1` }] };
    refusals += await refuseAll(
      sample,
      legit(
        u.tech,
        'sample.route',
        routeUpdate,
        routing,
        sampleGrantedArgs.route(routing),
        sampleGrantedArgs.route({ tests: [{ test: 'CMP', piece: accession }] }),
      ),
      u.tech2,
    );
    await mustAct(p, u.tech, accession, 'route', routing);

    const rejection = { code: 'RH', condition: 'Hemolysed for TSH', disposition: 'retained', tests: ['TSH'] };
    refusals += await refuseAll(
      sample,
      legit(
        u.tech,
        'sample.reject',
        rejectUpdate,
        rejection,
        sampleGrantedArgs.reject(rejection as never),
        sampleGrantedArgs.reject({ ...rejection, disposition: 'discarded' } as never),
      ),
      u.tech2,
    );
    await mustAct(p, u.tech, accession, 'reject', rejection);

    const cancel = { reason: 'Wrong encounter' };
    refusals += await refuseAll(
      sample,
      legit(u.doc, 'sample.cancel', cancelUpdate, cancel, sampleGrantedArgs.cancel(cancel), sampleGrantedArgs.cancel({ reason: 'Other' })),
      u.tech,
    );
    await mustAct(p, u.doc, accession, 'cancel', cancel);

    const reinstate = { reason: 'Right encounter after all' };
    refusals += await refuseAll(
      sample,
      legit(
        u.tech,
        'sample.reinstate',
        reinstateUpdate,
        reinstate,
        sampleGrantedArgs.reinstate(reinstate),
        sampleGrantedArgs.reinstate({ reason: 'Other' }),
      ),
      u.tech2,
    );
    const reinstated = await mustAct(p, u.tech, accession, 'reinstate', reinstate);
    assert.equal(reinstated.state, 'routed');

    const events = await securityEvents(workflowId);
    assert.equal(events.length, refusals, 'each refusal the recording step saw is a security event');
    assert.ok(events.every((e) => e.details.reason && e.details.attempted));
    assert.equal(alertsFor(accession).length, 1, 'IT operators are alerted once for the run, however many forgeries');

    // What the API did is recorded as the people Postgres knows, each grant consumed once.
    const custody = await db()('sample_custody_events').where('accession', 'like', `${accession}%`).pluck('actor');
    assert.ok(custody.length >= 5 && custody.every((actor) => actor === u.tech.username), JSON.stringify(custody));
    const audit = await db()('audit_events').where({ entity_type: 'sample', entity_id: accession, action: 'sample.cancelled' }).first();
    assert.equal(audit.actor, u.doc.username);
    assert.ok(audit.details.grant, 'the audit event names the grant it consumed');
  });

  it('refuses a forged order and a forged signed deviation; the submitter and the director then do them', async () => {
    const { accession, workflowId } = await register(p, u.doc, { tests: [] });
    await mustAct(p, u.tech, accession, 'receive', { location: 'Central receiving', temperatureC: 4 });
    const order = { tests: ['CMP'] };
    let refusals = await refuseAll(
      { accession, workflowId },
      legit(
        u.doc,
        'sample.attach_order',
        attachOrderUpdate,
        order,
        sampleGrantedArgs.attachOrder(order),
        sampleGrantedArgs.attachOrder({ tests: ['TSH'] }),
      ),
      u.doc2,
    );
    await mustAct(p, u.doc, accession, 'order', order);
    const state = await mustAct(p, u.tech, accession, 'inspect', { ...GOOD, identifiers: LABEL, hemolyzed: true });
    const contentHash = state.process.inspection.contentHash as string;
    const signature = { meaning: 'approval', contentHash, signedAt: new Date().toISOString() };
    const deviation = { comment: 'Mild hemolysis', signature };
    refusals += await refuseAll(
      { accession, workflowId },
      legit(
        u.director,
        'sample.accept_with_deviation',
        acceptWithDeviationUpdate,
        deviation,
        sampleGrantedArgs.acceptWithDeviation(deviation),
        sampleGrantedArgs.acceptWithDeviation({ ...deviation, comment: 'Other' }),
        signature,
      ),
      u.tech,
    );
    assert.equal((await securityEvents(workflowId)).length, refusals);
    assert.equal(alertsFor(accession).length, 1);
    const accepted = await mustAct(p, u.director, accession, 'accept-with-deviation', {
      comment: 'Mild hemolysis',
      signature: { password: u.director.password, meaning: 'approval', contentHash },
    });
    assert.equal(accepted.state, 'accepted_with_deviation');
    const [signed] = await db()('signatures').where({ entity_type: 'sample', entity_id: accession });
    assert.equal(signed.username, u.director.username);
  });

  it('records the person Postgres knows, whatever name the request carries for display', async () => {
    const { accession, workflowId } = await register(p, u.doc);
    const receipt = { by: 'chief.of.lab', receivedAt: new Date().toISOString(), location: 'Central receiving', temperatureC: 4 };
    const grant = await issue(u.tech, workflowId, 'sample.receive', sampleGrantedArgs.receive(receipt));
    const dressedUp = { ...u.tech.actor, username: 'chief.of.lab', printedName: 'Dr. Forged Name', roles: ['lab_director' as const] };
    const state = await handleOf(workflowId).executeUpdate(receiveUpdate, { args: [{ ...receipt, actor: dressedUp, grant }] });
    assert.equal(state.receivedBy, u.tech.username);
    const row = await db()('samples').where({ accession }).first('received_by');
    assert.equal(row.received_by, u.tech.username);
    const [custody] = await db()('sample_custody_events').where({ accession }).pluck('actor');
    assert.equal(custody, u.tech.username);
  });

  describe('machine events', () => {
    let source: string;
    let secret: string;
    before(async () => {
      source = `courier-${tag()}`;
      const res = await p.api('POST', '/api/v1/sample-sources', { key: u.admin.apiKey, body: { name: source, contact: u.doc.username } });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      secret = res.body.secret;
    });
    const post = (body: unknown) => {
      const raw = JSON.stringify(body);
      const timestamp = String(Math.floor(Date.now() / 1000));
      return p.api('POST', `/api/v1/webhooks/${source}`, {
        raw,
        headers: { 'x-labflow-timestamp': timestamp, 'x-labflow-signature': `sha256=${webhookSignature(secret, timestamp, raw)}` },
      });
    };

    it('refuses a forged sampleEvent signal however its proof is forged; the signed webhook then applies the event', async () => {
      const externalId = `EXT-${tag()}`;
      const ordered = await post({
        eventId: `o-${tag()}`,
        type: 'order',
        sample: { externalId, sampleType: 'SERUM', tests: ['CMP'], patient: PATIENT, collectedAt: hoursAgo(2) },
      });
      assert.equal(ordered.status, 202, JSON.stringify(ordered.body));
      const row = await waitFor(() => db()('samples').where({ source, external_id: externalId }).first(), 'the sample registered');
      const { accession, workflow_id: workflowId } = row;
      await waitFor(async () => (await handleOf(workflowId).query(sampleStateQuery)).state === 'expected' || null, 'the run');
      const handle = handleOf(workflowId);

      // A real delivery of this source, signalled to another sample's run.
      const other = await register(p, u.doc);
      const deliveryId = `s-${tag()}`;
      const shipped: SampleEvent = {
        eventId: `${source}:${deliveryId}`,
        source,
        type: 'shipped',
        at: new Date().toISOString(),
        location: 'Ward 4',
      };
      await deliverEvent(other.workflowId, { ...shipped });
      const otherRun = await db()('sample_webhook_events')
        .where({ signalled_to: other.workflowId })
        .first('source', 'event_id', 'signalled_event');
      // A real delivery for this run, already recorded by an earlier activity.
      await db()('sample_webhook_events').insert({ source, event_id: deliveryId, type: 'sample.shipped', payload: '{}' });
      const own = { ...shipped, delivery: { source, eventId: deliveryId } };
      await db()('sample_webhook_events')
        .where({ source, event_id: deliveryId })
        .update({
          signalled_event: JSON.stringify(own),
          signalled_to: workflowId,
          recorded_at: db().fn.now(),
          recorded_by: USED_ELSEWHERE,
        });
      // One signalled for this run, for other arguments.
      const pendingId = `s-${tag()}`;
      const pending = { ...shipped, eventId: `${source}:${pendingId}`, delivery: { source, eventId: pendingId } };
      await db()('sample_webhook_events').insert({
        source,
        event_id: pendingId,
        type: 'sample.shipped',
        payload: '{}',
        signalled_event: JSON.stringify(pending),
        signalled_to: workflowId,
      });

      const forged: { name: string; event: SampleEvent; reason: string }[] = [
        { name: 'no delivery', event: { ...shipped }, reason: 'missing' },
        { name: 'a made-up delivery', event: { ...shipped, delivery: { source, eventId: `x-${tag()}` } }, reason: 'unknown' },
        { name: "another run's delivery", event: otherRun.signalled_event as SampleEvent, reason: 'other_run' },
        { name: 'a delivery of another event', event: { ...pending, location: 'Forged dock' }, reason: 'other_arguments' },
        { name: 'a used delivery', event: own, reason: 'consumed' },
      ];
      const before = await record(accession, workflowId);
      const stateBefore = await handle.query(sampleStateQuery);
      for (const [i, forgery] of forged.entries()) {
        await handle.signal(sampleEventSignal, forgery.event);
        const events = await waitFor(async () => {
          const found = await securityEvents(workflowId);
          return found.length === i + 1 ? found : null;
        }, `the signal with ${forgery.name} refused`);
        assert.deepEqual([events[i].details.attempted, events[i].details.reason], ['sample.shipped', forgery.reason], forgery.name);
        assert.deepEqual(await record(accession, workflowId), before, `a signal with ${forgery.name} recorded something`);
        // The security event is written as the refusal goes back to the run, which then gives the event back.
        const state = await waitFor(async () => {
          const now = await handle.query(sampleStateQuery);
          return now.state === stateBefore.state && !now.appliedEvents.includes(forgery.event.eventId) ? now : null;
        }, `${forgery.name}: given back`);
        assert.deepEqual({ ...state, appliedEvents: [] }, { ...stateBefore, appliedEvents: [] }, `${forgery.name}: given back`);
        assert.ok(!state.appliedEvents.includes(forgery.event.eventId), `${forgery.name}: its event ID is not taken`);
      }
      assert.equal((await handle.describe()).status.name, 'RUNNING', 'the run stays healthy');
      assert.equal(alertsFor(accession).length, 1, 'IT operators are alerted once for the run');

      // The same event, through the signed webhook.
      const res = await post({ eventId: `s-${tag()}`, type: 'sample.shipped', sample: { externalId }, location: 'Ward 4' });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      await waitFor(async () => (await handle.query(sampleStateQuery)).state === 'in_transit' || null, 'in transit');
      const custody = await waitFor(async () => {
        const rows = await db()('sample_custody_events').where({ accession, event: 'shipped' }).select('actor');
        return rows.length === 1 ? rows : null;
      }, 'the shipment recorded');
      assert.equal(custody[0].actor, `system:${source}`);
      assert.equal((await securityEvents(workflowId)).length, forged.length);
    });
  });

  describe('clinicians act only on samples they submitted', () => {
    it('answers 403 problem+json to a clinician acting on a sample someone else submitted, writing nothing; lab roles act on any', async () => {
      const { accession, workflowId } = await inspected(p, u.doc, u.tech, { tests: [] });
      const before = await record(accession, workflowId);
      const grantsBefore = await db()('action_grants').where({ workflow_id: workflowId }).count('* as n').first();
      for (const [action, body] of [
        ['cancel', { reason: 'Not my patient' }],
        ['order', { tests: ['CMP'] }],
      ] as const) {
        const res = await act(p, u.doc2, accession, action, body);
        assert.equal(res.status, 403, `${action}: ${JSON.stringify(res.body)}`);
        assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
        assert.equal(res.body.type, 'urn:labflow:problem:forbidden', JSON.stringify(res.body));
      }
      assert.deepEqual(await record(accession, workflowId), before, 'nothing written');
      assert.deepEqual(
        await db()('action_grants').where({ workflow_id: workflowId }).count('* as n').first(),
        grantsBefore,
        'no grant written',
      );

      const ordered = await act(p, u.doc, accession, 'order', { tests: ['CMP'] });
      assert.equal(ordered.status, 200, JSON.stringify(ordered.body));
      const cancelled = await act(p, u.tech2, accession, 'cancel', { reason: 'Duplicate draw' });
      assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
      assert.equal(cancelled.body.state, 'cancelled');
    });

    it('refuses in the recording step a clinician whom Postgres does not hold as the submitter, whatever the run was told', async () => {
      const { accession, workflowId } = await register(p, u.doc);
      // The run was started with doc as submitter; Postgres now holds someone else.
      await db()('samples').where({ accession }).update({ submitter_id: u.doc2.actor.userId });
      const before = await record(accession, workflowId);
      const cancel = { reason: 'Not needed' };
      const grant = await issue(u.doc, workflowId, 'sample.cancel', sampleGrantedArgs.cancel(cancel));
      const type = await refusalType(
        handleOf(workflowId).executeUpdate(cancelUpdate, { args: [{ ...cancel, actor: u.doc.actor, grant }] }),
      );
      assert.equal(type, FailureType.GrantRefused);
      assert.deepEqual(await record(accession, workflowId), before);
      const [event] = await securityEvents(workflowId);
      assert.equal(event.details.reason, 'role_missing');
      assert.equal((await handleOf(workflowId).query(sampleStateQuery)).state, 'expected');
      // Through the API, the clinician Postgres does not hold as submitter is refused before any grant is written.
      const res = await act(p, u.doc, accession, 'cancel', cancel);
      assert.equal(res.status, 403, JSON.stringify(res.body));
    });
  });
});
