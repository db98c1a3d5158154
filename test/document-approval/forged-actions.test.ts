import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import { assigneeKey, type AssigneeRef } from '../../common/assignees';
import {
  completePeriodicReviewUpdate,
  decideUpdate,
  documentStateQuery,
  extendDueUpdate,
  obsoleteUpdate,
  reassignUpdate,
  supersededSignal,
  uploadRevisionUpdate,
  withdrawUpdate,
  type DocumentApprovalState,
} from '../../common/document-approval';
import { FailureType } from '../../common/failures';
import { grantedArgs, type GrantAction } from '../../common/grants';
import { findVersion, storeContent } from '../../db/documents';
import { approvalInput, startApprovalRun } from '../../api/temporal/document-approval';
import { workflowIds } from '../../common/ids';
import type { RoutingStage } from '../../common/document-approval';
import { consumeGrant } from '../../db/grants';
import type { documentApprovalWorkflow } from '../../workflows';
import { oneStage, underReview } from '../api/support';
import { createDraft, getVersion, submit } from '../helpers/documents';
import { USED_ELSEWHERE, grantForgeries, issueTestGrant, refusalType, type Signature } from '../helpers/forgery';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';

type Handle = WorkflowHandle<typeof documentApprovalWorkflow>;
type Args = Record<string, unknown>;

/**
 * An attacker who can reach the Temporal frontend (with labflow's data converter, so payloads are encrypted as
 * labflow's are) sends every recording Update and Signal of document approval straight to the runs, with no
 * grant, another user's grant, a used one, an expired one and one written for other arguments. Each is refused,
 * nothing of the action is recorded, the attempt is a security event, IT operators hear of it once per run, and
 * the same action then succeeds through the API.
 */
describe('forged document-approval actions sent straight to Temporal', () => {
  let p: Platform;
  let u: Record<'author' | 'rita' | 'rick' | 'ruth' | 'control' | 'ivan', TestUser>;

  before(async () => {
    p = await startPlatform();
    u = await makeUsers({
      author: ['author'],
      rita: ['reviewer'],
      rick: ['reviewer'],
      ruth: ['reviewer'],
      control: ['document_control'],
      ivan: ['it_operator'],
    });
  });
  after(() => p.stop());

  const db = () => testEnv().db;
  const handleOf = (workflowId: string): Handle => testEnv().client.workflow.getHandle(workflowId);

  const issue = (who: TestUser, workflowId: string, action: GrantAction, bound: unknown, signature?: Signature) =>
    issueTestGrant(who, workflowId, action, bound, signature);

  interface Legit {
    who: TestUser;
    action: GrantAction;
    update: UpdateDefinition<DocumentApprovalState, [never]>;
    args: Args;
    /** What the grant binds for these arguments (grantedArgs), and for a different set of them. */
    bound: unknown;
    otherBound: unknown;
    signature?: Signature;
  }

  /** Every kind of bad proof for one action: the grant to send and whether the validator or the activity refuses. */
  async function forgeries(workflowId: string, legit: Legit, other: TestUser) {
    const { who, action, bound, otherBound, signature } = legit;
    const cases = await grantForgeries({ workflowId, who, other, action, bound, otherBound, signature });
    if (signature) {
      const otherHash = { ...signature, contentHash: 'f'.repeat(64) };
      cases.push({
        name: 'a grant for another content hash',
        grant: await issue(who, workflowId, action, grantedArgs.decide({ ...legit.args, signature: otherHash } as never), otherHash),
      });
    }
    return cases;
  }

  /** What a forged action could have written: the run's signatures, its audit trail other than security events, its tasks. */
  async function record(workflowId: string) {
    const [signatures, audit, tasks, version, grants] = await Promise.all([
      db()('signatures').where({ workflow_id: workflowId }).count('* as n').first(),
      db()('audit_events')
        .whereRaw(`details->>'workflowId' = ?`, [workflowId])
        .whereNot('action', 'security.grant_refused')
        .orderBy('seq')
        .pluck('action'),
      db()('tasks').where({ workflow_id: workflowId }).orderBy('task_key').select('task_key', 'state', 'due_at', 'closed_by'),
      db()('document_versions').where({ workflow_id: workflowId }).first('state', 'content_hash', 'assignees', 'due_at', 'next_review_at'),
      db()('action_grants')
        .where({ workflow_id: workflowId })
        .whereNotNull('consumed_at')
        .whereNot('consumed_by', USED_ELSEWHERE)
        .count('* as n')
        .first(),
    ]);
    return { signatures: Number(signatures?.n), audit, tasks, version, consumedGrants: Number(grants?.n) };
  }

  const securityEvents = async (workflowId: string) =>
    db()('audit_events')
      .where({ action: 'security.grant_refused' })
      .whereRaw(`details->>'workflowId' = ?`, [workflowId])
      .orderBy('seq')
      .select('details');

  /** Sends each forgery of the action and proves it refused and unrecorded; answers how many reached the activity. */
  async function refuseAll(workflowId: string, legit: Legit, other: TestUser): Promise<number> {
    const handle = handleOf(workflowId);
    const before = await record(workflowId);
    const stateBefore = await handle.query(documentStateQuery);
    let byActivity = 0;
    for (const forgery of await forgeries(workflowId, legit, other)) {
      const args = { ...legit.args, actor: legit.who.actor, grant: forgery.grant };
      const type = await refusalType(
        handle.executeUpdate(legit.update as UpdateDefinition<DocumentApprovalState, [Args]>, { args: [args] }),
      );
      assert.equal(type, FailureType.GrantRefused, `${legit.action} with ${forgery.name}`);
      if (!forgery.byValidator) byActivity += 1;
      assert.deepEqual(await record(workflowId), before, `${legit.action} with ${forgery.name} recorded something`);
    }
    const stateAfter = await handle.query(documentStateQuery);
    assert.deepEqual(stateAfter, stateBefore, `${legit.action}: the run gave back what the refused actions took`);
    return byActivity;
  }

  const alertsFor = (label: string) =>
    testEnv().mails.filter((m) => m.to.some((to) => to.includes(u.ivan.username)) && (m.subject ?? '').includes(label));

  const api = (who: TestUser, path: string, body: Args) => p.api('POST', path, { key: who.apiKey, body });

  it('refuses forged decisions, extensions, reassignments and withdrawals of a run in review; the API then does each', async () => {
    const v = await underReview(p, u.author, oneStage([u.rita, u.rick]));
    const label = `${v.number} v${v.version}`;
    const signature = { meaning: 'approval', contentHash: v.contentHash, signedAt: new Date().toISOString() };
    const decide = { decision: 'approve', signature };
    const dueAt = new Date(Date.now() + 10 * 86_400_000).toISOString();
    const to: AssigneeRef = { kind: 'user', userId: u.ruth.actor.userId, username: u.ruth.username };
    const reassign = { from: `user:${u.rick.username}`, to, reason: 'on leave' };
    let refusals = 0;

    refusals += await refuseAll(
      v.workflowId,
      {
        who: u.rita,
        action: 'document.decide',
        update: decideUpdate as never,
        args: decide,
        bound: grantedArgs.decide(decide),
        otherBound: grantedArgs.decide({ decision: 'reject', comment: 'no', signature }),
        signature,
      },
      u.rick,
    );
    const state = await handleOf(v.workflowId).query(documentStateQuery);
    assert.ok(
      state.stages[0].slots.every((slot) => !slot.decision),
      "rita's slot is open again",
    );

    refusals += await refuseAll(
      v.workflowId,
      {
        who: u.control,
        action: 'document.extend_due',
        update: extendDueUpdate as never,
        args: { dueAt, reason: 'audit week' },
        bound: grantedArgs.extendDue({ dueAt, reason: 'audit week' }),
        otherBound: grantedArgs.extendDue({ dueAt: new Date(Date.now() + 20 * 86_400_000).toISOString(), reason: 'audit week' }),
      },
      u.author,
    );
    refusals += await refuseAll(
      v.workflowId,
      {
        who: u.control,
        action: 'document.reassign',
        update: reassignUpdate as never,
        args: reassign,
        bound: grantedArgs.reassign({ ...reassign, to: assigneeKey(to) }),
        otherBound: grantedArgs.reassign({ ...reassign, to: `user:${u.author.username}` }),
      },
      u.rita,
    );
    refusals += await refuseAll(
      v.workflowId,
      {
        who: u.author,
        action: 'document.withdraw',
        update: withdrawUpdate as never,
        args: { reason: 'wrong template' },
        bound: grantedArgs.withdraw({ reason: 'wrong template' }),
        otherBound: grantedArgs.withdraw({ reason: 'something else' }),
      },
      u.control,
    );

    const events = await securityEvents(v.workflowId);
    assert.equal(events.length, refusals, 'each refusal the recording step saw is a security event');
    assert.ok(events.every((e) => e.details.reason && e.details.attempted));
    assert.equal(alertsFor(label).length, 1, 'IT operators are alerted once for the run, however many forgeries');

    // The same actions through the API, which writes the grants the run consumes.
    const approved = await api(u.rita, `${v.path}/decisions`, {
      decision: 'approve',
      signature: { password: u.rita.password, meaning: 'approval', contentHash: v.contentHash },
    });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    const signed = await db()('signatures').where({ workflow_id: v.workflowId });
    assert.equal(signed.length, 1);
    assert.equal(signed[0].user_id ?? signed[0].signer_id ?? u.rita.actor.userId, u.rita.actor.userId);
    const extended = await api(u.control, `${v.path}/extend`, { dueAt, reason: 'audit week' });
    assert.equal(extended.status, 200, JSON.stringify(extended.body));

    // A grant the run consumed cannot be sent again, whatever it is sent with (the validator would refuse the same date twice).
    const spent = await db()('action_grants')
      .where({ workflow_id: v.workflowId, action: 'document.extend_due' })
      .whereNot('consumed_by', USED_ELSEWHERE)
      .whereNotNull('consumed_at')
      .first('id');
    const later = new Date(Date.parse(dueAt) + 86_400_000).toISOString();
    const replayed = await refusalType(
      handleOf(v.workflowId).executeUpdate(extendDueUpdate, {
        args: [{ actor: u.control.actor, grant: spent.id, dueAt: later, reason: 'audit week' }],
      }),
    );
    assert.equal(replayed, FailureType.GrantRefused, 'a consumed grant replayed');
    assert.equal((await securityEvents(v.workflowId)).at(-1).details.reason, 'consumed');

    const reassigned = await api(u.control, `${v.path}/reassign`, {
      from: reassign.from,
      to: { user: u.ruth.username },
      reason: 'on leave',
    });
    assert.equal(reassigned.status, 200, JSON.stringify(reassigned.body));
    const withdrawn = await api(u.author, `${v.path}/withdraw`, { reason: 'wrong template' });
    assert.equal(withdrawn.status, 200, JSON.stringify(withdrawn.body));
    assert.equal(withdrawn.body.state, 'withdrawn');
    assert.equal(alertsFor(label).length, 1);
  });

  it('refuses a forged revision upload; the author then uploads it through the API', async () => {
    const v = await underReview(p, u.author, oneStage([u.rita]));
    const asked = await api(u.rita, `${v.path}/decisions`, { decision: 'request_changes', comment: 'section 4 is unclear' });
    assert.equal(asked.status, 200, JSON.stringify(asked.body));
    await waitFor(
      async () => (await getVersion(p, u.author.apiKey, v.number, v.version)).state === 'changes_requested',
      'changes requested',
    );
    const content = `Revised SOP text ${randomBytes(4).toString('hex')}`;
    const contentHash = await storeContent(db(), content);
    const refusals = await refuseAll(
      v.workflowId,
      {
        who: u.author,
        action: 'document.upload_revision',
        update: uploadRevisionUpdate as never,
        args: { contentHash },
        bound: grantedArgs.uploadRevision({ contentHash }),
        otherBound: grantedArgs.uploadRevision({ contentHash: 'e'.repeat(64) }),
      },
      u.control,
    );
    assert.equal((await securityEvents(v.workflowId)).length, refusals);
    assert.equal(alertsFor(`${v.number} v${v.version}`).length, 1);
    const revised = await api(u.author, `${v.path}/revision`, { content });
    assert.equal(revised.status, 200, JSON.stringify(revised.body));
    assert.equal(revised.body.round, 2);
  });

  it('refuses forged periodic reviews, retirements and a forged superseded signal of an effective version', async () => {
    const v = await underReview(p, u.author, { ...oneStage([u.rita]), periodicReview: '2s' }, undefined, u.control);
    const approved = await api(u.rita, `${v.path}/decisions`, {
      decision: 'approve',
      signature: { password: u.rita.password, meaning: 'approval', contentHash: v.contentHash },
    });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    await waitFor(
      async () => (await getVersion(p, u.author.apiKey, v.number, v.version)).process?.periodicReviewOpen,
      'periodic review open',
      20_000,
    );
    let refusals = await refuseAll(
      v.workflowId,
      {
        who: u.control,
        action: 'document.complete_periodic_review',
        update: completePeriodicReviewUpdate as never,
        args: { comment: 'still accurate' },
        bound: grantedArgs.completePeriodicReview({ comment: 'still accurate' }),
        otherBound: grantedArgs.completePeriodicReview({ comment: 'other' }),
      },
      u.rita,
    );
    refusals += await refuseAll(
      v.workflowId,
      {
        who: u.control,
        action: 'document.obsolete',
        update: obsoleteUpdate as never,
        args: { reason: 'method retired' },
        bound: grantedArgs.obsolete({ reason: 'method retired' }),
        otherBound: grantedArgs.obsolete({ reason: 'other' }),
      },
      u.rita,
    );

    // Postgres does not record this version as superseded: the run ignores the signal and says so.
    await handleOf(v.workflowId).signal(supersededSignal, { byWorkflowId: 'document-approval:FAKE:2', byVersion: v.version + 1 });
    refusals += 1;
    await waitFor(async () => (await securityEvents(v.workflowId)).length === refusals || null, 'the forged signal to be refused');
    const events = await securityEvents(v.workflowId);
    assert.equal(events.at(-1).details.attempted, 'document.superseded');
    const after = await handleOf(v.workflowId).query(documentStateQuery);
    assert.equal(after.state, 'effective');
    assert.equal((await db()('document_versions').where({ workflow_id: v.workflowId }).first('state')).state, 'effective');
    assert.equal(alertsFor(`${v.number} v${v.version}`).length, 1);

    const reviewed = await api(u.control, `${v.path}/periodic-review`, { comment: 'still accurate' });
    assert.equal(reviewed.status, 200, JSON.stringify(reviewed.body));
    const retired = await api(u.control, `${v.path}/obsolete`, { reason: 'method retired' });
    assert.equal(retired.status, 200, JSON.stringify(retired.body));
    assert.equal(retired.body.state, 'obsolete');
  });

  it('consumes a grant once: a retry of the same activity finds its own consumption, any other claim is refused', async () => {
    const workflowId = `document-approval:GRANTS-${randomBytes(3).toString('hex')}:v1`;
    const bound = grantedArgs.withdraw({ reason: 'wrong template' });
    const claim = { workflowId, action: 'document.withdraw' as GrantAction, userId: u.author.actor.userId, args: bound };
    const consume = (grantId: string, consumedBy: string, extra: Partial<typeof claim> = {}) =>
      db().transaction((trx) => consumeGrant(trx, { ...claim, ...extra, grantId, consumedBy }));

    const grant = await issue(u.author, workflowId, 'document.withdraw', bound);
    assert.equal((await consume(grant, 'run:activity-1')).ok, true);
    assert.equal((await consume(grant, 'run:activity-1')).ok, true, 'the same activity execution, retried after a crash');
    assert.deepEqual(await consume(grant, 'run:activity-2'), { ok: false, reason: 'consumed' });

    // A refused claim consumes nothing: the grant stays for the request it was written for.
    const mine = await issue(u.author, workflowId, 'document.withdraw', bound);
    assert.deepEqual(await consume(mine, 'run:activity-3', { userId: u.rick.actor.userId }), { ok: false, reason: 'other_user' });
    assert.deepEqual(await consume(mine, 'run:activity-3', { action: 'document.obsolete' }), { ok: false, reason: 'other_action' });
    assert.equal((await db()('action_grants').where({ id: mine }).first('consumed_at')).consumed_at, null);

    // A user deactivated after the API wrote the grant can no longer act with it.
    const late = await issue(u.ruth, workflowId, 'document.withdraw', bound);
    await db()('users').where({ id: u.ruth.actor.userId }).update({ active: false });
    try {
      assert.deepEqual(await consume(late, 'run:activity-4', { userId: u.ruth.actor.userId }), { ok: false, reason: 'user_inactive' });
    } finally {
      await db()('users').where({ id: u.ruth.actor.userId }).update({ active: true });
    }
  });

  it('fails a run started straight through Temporal without a valid submission grant, before it touches the record', async () => {
    const forgedStart = async (grantFor: (input: ReturnType<typeof approvalInput>) => Promise<string | undefined>) => {
      const draft = await createDraft(p, u.author);
      const row = (await findVersion(db(), draft.number, draft.version))!;
      const rita = { kind: 'user' as const, userId: u.rita.actor.userId, username: u.rita.username };
      const routing: RoutingStage[] = [{ name: 'Review', rule: { type: 'all' }, due: '72h', assignees: [rita] }];
      const input = approvalInput(row, routing, { reminderBefore: '24h', periodicReview: '365d', submittedBy: u.author.actor.userId });
      const handle = await startApprovalRun(testEnv().client, p.taskQueue, { ...input, submissionGrant: await grantFor(input) });
      await assert.rejects(handle.result(), 'the forged run fails');
      const version = await db()('document_versions').where({ id: row.id }).first('state', 'workflow_id');
      assert.deepEqual(version, { state: 'draft', workflow_id: null }, 'nothing of the forged submission is recorded');
      assert.equal((await db()('tasks').where({ workflow_id: handle.workflowId })).length, 0);
      const events = await securityEvents(handle.workflowId);
      assert.deepEqual(
        events.map((e) => e.details.attempted),
        ['document.submit'],
      );
      return { draft, events };
    };

    await forgedStart(async () => randomBytes(32).toString('base64url'));
    const { draft, events } = await forgedStart(async (input) =>
      issue(u.author, workflowIds.documentApproval(input.documentNumber, input.version), 'document.submit', {
        ...grantedArgs.submit(input),
        routing: [],
      }),
    );
    assert.equal(events[0].details.reason, 'other_arguments');

    // The real submission through the API is not kept out by the failed forgery under the same business key.
    await submit(p, u.author, draft.number, draft.version, oneStage([u.rita]));
    await waitFor(async () => (await getVersion(p, u.author.apiKey, draft.number, draft.version)).state === 'in_review', 'in review');
  });

  it('records the signer Postgres knows, whatever name the request carries for display', async () => {
    const v = await underReview(p, u.author, oneStage([u.rita]));
    const signature = { meaning: 'approval', contentHash: v.contentHash, signedAt: new Date().toISOString() };
    const args = { decision: 'approve' as const, signature };
    const grant = await issue(u.rita, v.workflowId, 'document.decide', grantedArgs.decide(args), signature);
    const dressedUp = { ...u.rita.actor, username: 'chief.physician', printedName: 'Dr. Forged Name' };
    const state = await handleOf(v.workflowId).executeUpdate(decideUpdate, { args: [{ ...args, actor: dressedUp, grant }] });
    assert.equal(state.stages[0].slots[0].decision?.printedName, u.rita.actor.printedName);
    const [row] = await db()('signatures').where({ workflow_id: v.workflowId });
    assert.equal(row.printed_name, u.rita.actor.printedName);
    assert.equal(row.username, u.rita.username);
    const event = await db()('audit_events')
      .where({ action: 'document.decision.approve' })
      .whereRaw(`details->>'workflowId' = ?`, [v.workflowId])
      .first();
    assert.equal(event.actor, u.rita.username);
    assert.equal(event.details.grant, grant);
  });
});
