import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import {
  cancelCapaUpdate,
  capaStateQuery,
  closeCapaUpdate,
  completeActionUpdate,
  containmentUpdate,
  decideExtensionUpdate,
  decidePlanUpdate,
  effectivenessUpdate,
  investigationUpdate,
  linkSourcesSignal,
  linkSourcesUpdate,
  reopenCapaUpdate,
  requestExtensionUpdate,
  submitPlanUpdate,
  triageUpdate,
  userDeactivatedSignal,
  type CapaState,
} from '../../common/capa';
import { capaGrantedArgs, type CapaGrantAction } from '../../common/capa-grants';
import { FailureType } from '../../common/failures';
import type { capaWorkflow } from '../../workflows';
import { USED_ELSEWHERE, grantForgeries, issueTestGrant, refusalType, type Signature } from '../helpers/forgery';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { act, createCapa, fast, inHours, sign, waitForStage } from './support';

type Handle = WorkflowHandle<typeof capaWorkflow>;
type Args = Record<string, unknown>;

/**
 * An attacker who can reach the Temporal frontend sends every recording Update and Signal of the CAPA process
 * straight to a run: with no grant, another user's, a used one, an expired one, one written for other arguments or
 * another run (and, for a signature, one for another content hash or without a password check). Each is refused,
 * nothing is recorded, the attempt is a security event, IT operators hear of it once per run, the run goes on, and
 * the same action then succeeds through the API.
 */
describe('forged CAPA actions sent straight to Temporal', () => {
  let p: Platform;
  let u: Record<'qa' | 'qa2' | 'owner' | 'tech' | 'director' | 'initiator' | 'ivan' | 'admin', TestUser>;

  before(async () => {
    p = await startPlatform();
    u = await makeUsers({
      qa: ['qa_manager'],
      qa2: ['qa_manager'],
      owner: ['lab_technician'],
      tech: ['lab_technician'],
      director: ['lab_director'],
      initiator: ['clinician'],
      ivan: ['it_operator'],
      admin: ['admin'],
    });
  });
  after(() => p.stop());

  const db = () => testEnv().db;
  const handleOf = (number: string): Handle => testEnv().client.workflow.getHandle(`capa:${number}`);
  const bind = (action: CapaGrantAction, args: Args) => (capaGrantedArgs[action] as (a: unknown) => unknown)(args);

  const issue = (who: TestUser, workflowId: string, action: CapaGrantAction, bound: unknown, signature?: Signature) =>
    issueTestGrant(who, workflowId, action, bound, signature);

  interface Legit {
    who: TestUser;
    action: CapaGrantAction;
    update: UpdateDefinition<CapaState, [never]>;
    args: Args;
    otherArgs: Args;
    signature?: Signature;
  }

  async function forgeries(workflowId: string, legit: Legit, other: TestUser) {
    const { who, action, args, otherArgs, signature } = legit;
    const bound = bind(action, args);
    const cases = await grantForgeries({
      workflowId,
      who,
      other,
      action,
      bound,
      otherBound: bind(action, otherArgs),
      signature,
      otherAction: { action: action === 'capa.cancel' ? 'capa.reopen' : 'capa.cancel', bound: { reason: 'x' } },
    });
    if (signature) {
      const otherHash = { ...signature, contentHash: 'f'.repeat(64) };
      cases.push({ name: 'a grant whose password check bound another content hash', grant: await issue(who, workflowId, action, bound, otherHash) });
    }
    return cases;
  }

  /** What a forged action could have written for this CAPA. */
  async function record(number: string) {
    const workflowId = `capa:${number}`;
    const [capa, sources, actions, records, tasks, signatures, audit, grants] = await Promise.all([
      db()('capas').where({ number }).first(),
      db()('capa_sources').where({ capa_number: number }).orderBy(['source_type', 'source_id']).select('source_type', 'source_id'),
      db()('capa_actions').where({ capa_number: number }).orderBy(['round', 'action_id']).select(),
      db()('capa_records').where({ capa_number: number }).count('* as n').first(),
      db()('tasks').where({ workflow_id: workflowId }).orderBy('task_key').select('task_key', 'state', 'due_at', 'closed_by'),
      db()('signatures').where({ workflow_id: workflowId }).count('* as n').first(),
      db()('audit_events').where({ entity_type: 'capa', entity_id: number }).whereNot('action', 'security.grant_refused').pluck('action'),
      db()('action_grants')
        .where({ workflow_id: workflowId })
        .whereNotNull('consumed_at')
        .whereNot('consumed_by', USED_ELSEWHERE)
        .count('* as n')
        .first(),
    ]);
    return {
      capa,
      sources,
      actions,
      records: Number(records?.n),
      tasks,
      signatures: Number(signatures?.n),
      audit,
      consumedGrants: Number(grants?.n),
    };
  }

  const securityEvents = (number: string) =>
    db()('audit_events')
      .where({ action: 'security.grant_refused', entity_type: 'capa', entity_id: number })
      .orderBy('seq')
      .select('details');

  /** Sends each forgery of the action; proves each refused and unrecorded; answers how many reached the activity. */
  async function refuseAll(number: string, legit: Legit, other: TestUser): Promise<number> {
    const handle = handleOf(number);
    const before = await record(number);
    const stateBefore = await handle.query(capaStateQuery);
    let byActivity = 0;
    for (const forgery of await forgeries(`capa:${number}`, legit, other)) {
      const args = { ...legit.args, actor: legit.who.actor, grant: forgery.grant };
      const type = await refusalType(handle.executeUpdate(legit.update as UpdateDefinition<CapaState, [Args]>, { args: [args] }));
      assert.equal(type, FailureType.GrantRefused, `${legit.action} with ${forgery.name}`);
      if (!forgery.byValidator) byActivity += 1;
      assert.deepEqual(await record(number), before, `${legit.action} with ${forgery.name} recorded something`);
    }
    assert.deepEqual(await handle.query(capaStateQuery), stateBefore, `${legit.action}: the run gave back what the refused actions took`);
    return byActivity;
  }

  const alertsFor = (number: string) =>
    testEnv().mails.filter((m) => m.to.some((to) => to.includes(u.ivan.username)) && (m.subject ?? '').includes(number));

  /** Forgeries of one action, then the same action through the API; answers the API's body. */
  async function forgedThenApi(
    number: string,
    legit: Legit,
    other: TestUser,
    path: string,
    body: unknown,
    count: { refusals: number },
  ): Promise<Args> {
    count.refusals += await refuseAll(number, legit, other);
    assert.equal((await securityEvents(number)).length, count.refusals, `${legit.action}: each refusal is a security event`);
    return act(p, legit.who, number, path, body);
  }

  it('refuses every forged Update of a CAPA from triage to closure and reopening; the API then does each', async () => {
    const { number } = await createCapa(p, u.initiator, { sources: [{ type: 'complaint', id: `CMP-${randomBytes(3).toString('hex')}` }] });
    const count = { refusals: 0 };
    const ownerRef = { kind: 'user', userId: u.owner.actor.userId, username: u.owner.username };
    const triage = { decision: 'accept', severity: 4, occurrence: 3, owner: ownerRef, durations: fast };
    await forgedThenApi(
      number,
      { who: u.qa, action: 'capa.triage', update: triageUpdate as never, args: triage, otherArgs: { ...triage, severity: 1 } },
      u.qa2,
      '/triage',
      { decision: 'accept', severity: 4, occurrence: 3, owner: u.owner.username, durations: fast },
      count,
    );

    const link = { sources: [{ type: 'audit_finding', id: 'AF-1' }], by: u.owner.username };
    await forgedThenApi(
      number,
      { who: u.owner, action: 'capa.link_sources', update: linkSourcesUpdate as never, args: link, otherArgs: { ...link, sources: [] } },
      u.qa,
      '/sources',
      { sources: link.sources },
      count,
    );

    const containment = { summary: 'Quarantined tubes', actions: ['Hold ward 3'] };
    await forgedThenApi(
      number,
      {
        who: u.owner,
        action: 'capa.record_containment',
        update: containmentUpdate as never,
        args: containment,
        otherArgs: { ...containment, summary: 'other' },
      },
      u.tech,
      '/containment',
      containment,
      count,
    );
    const investigation = { method: 'five_whys', rootCause: 'Tourniquet too long', findings: '12 draws' };
    await forgedThenApi(
      number,
      {
        who: u.owner,
        action: 'capa.record_investigation',
        update: investigationUpdate as never,
        args: investigation,
        otherArgs: { ...investigation, rootCause: 'other' },
      },
      u.tech,
      '/investigation',
      investigation,
      count,
    );
    const dueAt = inHours(48);
    const plan = {
      actions: [{ type: 'corrective', description: 'Retrain phlebotomists', owner: ownerRef, dueAt }],
      criteria: [{ description: 'Haemolysis rate', measure: 'below 2%' }],
    };
    const planned = await forgedThenApi(
      number,
      { who: u.owner, action: 'capa.submit_plan', update: submitPlanUpdate as never, args: plan, otherArgs: { ...plan, criteria: [] } },
      u.tech,
      '/plan',
      { actions: [{ ...plan.actions[0], owner: { user: u.owner.username } }], criteria: plan.criteria },
      count,
    );

    const planHash = (planned.plan as { contentHash: string }).contentHash;
    const planSignature = { meaning: 'approval', contentHash: planHash, signedAt: new Date().toISOString() };
    const approve = { decision: 'approve', signature: planSignature };
    await forgedThenApi(
      number,
      {
        who: u.qa,
        action: 'capa.decide_plan',
        update: decidePlanUpdate as never,
        args: approve,
        otherArgs: { ...approve, comment: 'other' },
        signature: planSignature,
      },
      u.qa2,
      '/plan/decision',
      { decision: 'approve', signature: sign(u.qa, planHash) },
      count,
    );
    assert.equal(
      (await db()('signatures').where({ workflow_id: `capa:${number}` })).length,
      1,
      'only the approval through the API is signed',
    );

    const extension = { actionId: 'A1', dueAt: inHours(96), reason: 'parts late' };
    await forgedThenApi(
      number,
      {
        who: u.owner,
        action: 'capa.request_extension',
        update: requestExtensionUpdate as never,
        args: extension,
        otherArgs: { ...extension, dueAt: inHours(200) },
      },
      u.tech,
      '/actions/A1/extension',
      { dueAt: extension.dueAt, reason: extension.reason },
      count,
    );
    const decision = { actionId: 'A1', approve: true, reason: 'supplier letter' };
    await forgedThenApi(
      number,
      {
        who: u.qa,
        action: 'capa.decide_extension',
        update: decideExtensionUpdate as never,
        args: decision,
        otherArgs: { ...decision, approve: false },
      },
      u.qa2,
      '/actions/A1/extension/decision',
      { approve: true, reason: decision.reason },
      count,
    );
    const completion = { actionId: 'A1', evidence: { text: 'Training records TR-1', attachments: [] } };
    await forgedThenApi(
      number,
      {
        who: u.owner,
        action: 'capa.complete_action',
        update: completeActionUpdate as never,
        args: completion,
        otherArgs: { ...completion, evidence: { text: 'other', attachments: [] } },
      },
      u.tech,
      '/actions/A1/complete',
      { evidence: completion.evidence.text },
      count,
    );
    await waitForStage(p, u.qa, number, 'effectiveness_review');
    // The run's own step (the effectiveness wait is over) is written before the forgeries are judged against it.
    await waitFor(async () => (await db()('capas').where({ number, stage: 'effectiveness_review' }).first()) ?? null, 'the projection');
    const check = { results: [{ criterionId: 'C1', met: true, evidence: 'rate 1.1%' }], comment: '' };
    const passed = await forgedThenApi(
      number,
      {
        who: u.director,
        action: 'capa.record_effectiveness',
        update: effectivenessUpdate as never,
        args: check,
        otherArgs: { ...check, comment: 'other' },
      },
      u.qa,
      '/effectiveness',
      check,
      count,
    );

    const closureHash = passed.closureContentHash as string;
    const closeSignature = { meaning: 'responsibility', contentHash: closureHash, signedAt: new Date().toISOString() };
    const closing = { comment: 'effective', signature: closeSignature };
    await forgedThenApi(
      number,
      {
        who: u.qa,
        action: 'capa.close',
        update: closeCapaUpdate as never,
        args: closing,
        otherArgs: { ...closing, comment: 'other' },
        signature: closeSignature,
      },
      u.qa2,
      '/close',
      { comment: 'effective', signature: sign(u.qa, closureHash, 'responsibility') },
      count,
    );
    await forgedThenApi(
      number,
      {
        who: u.qa,
        action: 'capa.reopen',
        update: reopenCapaUpdate as never,
        args: { reason: 'recurred' },
        otherArgs: { reason: 'other' },
      },
      u.qa2,
      '/reopen',
      { reason: 'recurred' },
      count,
    );
    const cancelled = await forgedThenApi(
      number,
      {
        who: u.qa,
        action: 'capa.cancel',
        update: cancelCapaUpdate as never,
        args: { reason: 'raised twice' },
        otherArgs: { reason: 'other' },
      },
      u.qa2,
      '/cancel',
      { reason: 'raised twice' },
      count,
    );
    assert.equal(cancelled.stage, 'cancelled');

    const events = await securityEvents(number);
    assert.ok(events.length > 13 * 5, 'every action was forged several ways past its validator');
    assert.ok(events.every((e) => e.details.reason && String(e.details.attempted).startsWith('capa.')));
    assert.deepEqual([...new Set(events.map((e) => e.details.reason))].sort(), [
      'consumed',
      'expired',
      'other_action',
      'other_arguments',
      'other_run',
      'other_user',
      'signature_unverified',
      'unknown',
    ]);
    assert.equal(alertsFor(number).length, 1, 'IT operators are alerted once for the run, however many forgeries');
  });

  it('records the person Postgres knows, whatever the request names, and a consumed grant is not accepted again', async () => {
    const { number, workflowId } = await createCapa(p, u.initiator);
    const triage = { decision: 'unfounded', reason: 'within specification' };
    const grant = await issue(u.qa, workflowId, 'capa.triage', bind('capa.triage', triage));
    const dressedUp = { ...u.qa.actor, username: 'chief.qa', printedName: 'Dr. Forged Name' };
    const state = await handleOf(number).executeUpdate(triageUpdate, { args: [{ ...triage, actor: dressedUp, grant } as never] });
    assert.equal(state.outcome, 'unfounded');
    const event = await db()('audit_events').where({ entity_type: 'capa', entity_id: number, action: 'capa.unfounded' }).first();
    assert.deepEqual([event.actor, event.actor_id, event.details.grant], [u.qa.username, u.qa.actor.userId, grant]);

    const replayed = await refusalType(
      handleOf(number).executeUpdate(reopenCapaUpdate, { args: [{ actor: u.qa.actor, grant, reason: 'again' }] }),
    );
    assert.equal(replayed, FailureType.GrantRefused);
    assert.equal((await securityEvents(number)).at(-1)?.details.reason, 'consumed');
    assert.equal((await handleOf(number).query(capaStateQuery)).stage, 'closed');
  });

  it('believes linkSources and userDeactivated signals only as far as Postgres bears them out', async () => {
    const { number } = await createCapa(p, u.initiator);
    await act(p, u.qa, number, '/triage', { decision: 'accept', severity: 2, occurrence: 2, owner: u.owner.username, durations: fast });
    const handle = handleOf(number);
    const before = await record(number);
    const stateBefore = await handle.query(capaStateQuery);

    // No sample-intake request names this CAPA, no CAPA was merged into it, and no process is called "mallory".
    await handle.signal(linkSourcesSignal, { sources: [{ type: 'sample', id: 'ACC-FORGED' }], by: 'process:sample-intake' });
    await handle.signal(linkSourcesSignal, { sources: [{ type: 'supplier', id: 'Evil Corp' }], by: 'capa:CAPA-2026-9999' });
    await handle.signal(linkSourcesSignal, { sources: [{ type: 'supplier', id: 'Evil Corp' }], by: 'mallory' });
    // The owner is active: the run does not hand their work over on a signal's word.
    await handle.signal(userDeactivatedSignal, { userId: u.owner.actor.userId, username: u.owner.username });
    await waitFor(async () => (await securityEvents(number)).length === 4 || null, 'the forged signals to be refused');
    assert.deepEqual(
      (await securityEvents(number)).map((e) => e.details.attempted),
      ['capa.link_sources_signal', 'capa.link_sources_signal', 'capa.link_sources_signal', 'capa.user_deactivated_signal'],
    );
    assert.deepEqual(await record(number), before, 'nothing of the forged signals is recorded');
    assert.deepEqual(await handle.query(capaStateQuery), stateBefore, 'the run is as it was');
    assert.equal(alertsFor(number).length, 1);
    assert.equal((await handle.describe()).status.name, 'RUNNING');

    // Deactivated for real (POST /users/:username/deactivate), the hand-over goes through: the API's signal, borne out by Postgres.
    const { leaver } = await makeUsers({ leaver: ['lab_technician'] });
    const { number: other } = await createCapa(p, u.initiator);
    await act(p, u.qa, other, '/triage', { decision: 'accept', severity: 2, occurrence: 2, owner: leaver.username, durations: fast });
    const res = await p.api('POST', `/api/v1/users/${leaver.username}/deactivate`, {
      key: u.admin.apiKey,
      body: { password: u.admin.password, reason: 'left the lab' },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.handedOver.capa, [`capa:${other}`]);
    await waitFor(async () => {
      const s = await handleOf(other).query(capaStateQuery);
      return s.owner?.kind === 'user' && s.owner.userId === u.qa.actor.userId ? s : null;
    }, 'the hand-over to the triaging QA manager');
    assert.equal((await securityEvents(other)).length, 0);
  });

  it('lets only the owner or QA link sources (403, nothing written), and a source linked after the closure hash was shown voids the signature', async () => {
    const { number, workflowId } = await createCapa(p, u.initiator);
    await act(p, u.qa, number, '/triage', { decision: 'accept', severity: 2, occurrence: 2, owner: u.owner.username, durations: fast });
    const grantsBefore = await db()('action_grants')
      .where({ workflow_id: workflowId, action: 'capa.link_sources' })
      .count('* as n')
      .first();
    const before = await record(number);
    const refused = await act(p, u.tech, number, '/sources', { sources: [{ type: 'supplier', id: 'Evil Corp' }] }, 403);
    assert.equal(refused.type, 'urn:labflow:problem:forbidden');
    assert.deepEqual(await record(number), before);
    const grantsAfter = await db()('action_grants').where({ workflow_id: workflowId, action: 'capa.link_sources' }).count('* as n').first();
    assert.equal(Number(grantsAfter?.n), Number(grantsBefore?.n), 'no grant is written for a caller who may not link');
    // The run refuses it too, whatever grant it carries.
    const grant = await issue(
      u.tech,
      workflowId,
      'capa.link_sources',
      bind('capa.link_sources', { sources: [{ type: 'other', id: 'X' }] }),
    );
    const type = await refusalType(
      handleOf(number).executeUpdate(linkSourcesUpdate, {
        args: [{ actor: u.tech.actor, grant, sources: [{ type: 'other', id: 'X' }], by: u.tech.username }],
      }),
    );
    assert.equal(type, FailureType.Forbidden);
    assert.deepEqual(await record(number), before);

    // The owner links; then, once the closure record was hashed, QA links one more: the shown hash no longer signs.
    await act(p, u.owner, number, '/sources', { sources: [{ type: 'nonconformance', id: 'NC-1' }] });
    await act(p, u.owner, number, '/containment', { summary: 'Contained', actions: [] });
    await act(p, u.owner, number, '/investigation', { method: 'five_whys', rootCause: 'x', findings: 'y' });
    const planned = await act(p, u.owner, number, '/plan', {
      actions: [{ type: 'corrective', description: 'fix', owner: { user: u.owner.username }, dueAt: inHours(24) }],
      criteria: [{ description: 'rate', measure: 'below 2%' }],
    });
    await act(p, u.qa, number, '/plan/decision', { decision: 'approve', signature: sign(u.qa, planned.plan.contentHash) });
    await act(p, u.owner, number, '/actions/A1/complete', { evidence: 'done' });
    await waitForStage(p, u.qa, number, 'effectiveness_review');
    const passed = await act(p, u.director, number, '/effectiveness', { results: [{ criterionId: 'C1', met: true, evidence: 'ok' }] });
    const shown = passed.closureContentHash as string;
    const linked = await act(p, u.qa, number, '/sources', { sources: [{ type: 'supplier', id: 'Late Supplier' }] });
    assert.notEqual(linked.process?.closureContentHash ?? linked.closureContentHash, shown, 'the new source is part of the hash');
    const stale = await act(p, u.qa, number, '/close', { signature: sign(u.qa, shown, 'responsibility') }, 409);
    assert.equal(stale.type, 'urn:labflow:problem:stale-content-hash');
    assert.equal((await db()('signatures').where({ workflow_id: workflowId, stage_name: 'closed' })).length, 0);
    const current = (await handleOf(number).query(capaStateQuery)).closureContentHash as string;
    const closed = await act(p, u.qa, number, '/close', { signature: sign(u.qa, current, 'responsibility') });
    assert.equal(closed.stage, 'closed');
    await handleOf(number).terminate('test over');
  });
});
