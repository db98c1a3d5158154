import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { signOffUpdate, trainingIds } from '../../common/training';
import { checkGate } from '../../db/gate';
import { grantedTrainingSignOff } from './support';
import { approve, createDraft, submit, versionPath, waitForRecord } from '../helpers/documents';
import { issueTestGrant, refusalType } from '../helpers/forgery';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { assertProblem, userSlot } from '../api/support';
import { act, createCapa, inHours, toImplementation, waitForStage } from '../capa/support';

const REVIEW_OF_SPECS = 'document.review.specification';
const CAPA_VERIFICATION = 'capa.verify_effectiveness';
/** An activity only this file governs, for the gate's view of a version whose campaign has not run. */
const UNPLANNED = 'document.review.gate_window_test';

describe('training on every effective version, and the gate before governed work', function () {
  // A campaign opens one assignment run per person in the role, and the shared test database holds many by now.
  this.timeout(240_000);
  let p: Platform;
  let u: Record<'control' | 'rita' | 'tech1' | 'tech2' | 'tech3' | 'rev' | 'approver' | 'admin' | 'qa' | 'owner', TestUser>;
  const db = () => testEnv().db;

  before(async () => {
    p = await startPlatform();
    u = await makeUsers({
      control: ['document_control'],
      rita: ['approver'],
      tech1: ['lab_technician'],
      tech2: ['lab_technician'],
      tech3: ['lab_technician'],
      rev: ['reviewer'],
      approver: ['approver'],
      admin: ['admin'],
      qa: ['qa_manager', 'reviewer'],
      owner: ['author'],
    });
  });
  after(async () => {
    await db()('activity_governing_documents').whereIn('activity', [REVIEW_OF_SPECS, CAPA_VERIFICATION, UNPLANNED]).delete();
    await p.stop();
  });

  /** A new version of a form, reviewed by rita, effective at once; document control submits it with its training. */
  async function effective(training: Record<string, unknown>, number?: string) {
    let draft: { number: string; version: number; contentHash: string };
    if (number) {
      const res = await p.api('POST', `/api/v1/documents/${number}/versions`, { key: u.control.apiKey, body: { content: `Revised ${Math.random()}` } });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      draft = { number, version: res.body.version, contentHash: res.body.contentHash };
    } else {
      draft = await createDraft(p, u.control, `Procedure ${Math.random()}`, 'Pipetting procedure', 'form');
    }
    await submit(p, u.control, draft.number, draft.version, { routing: [{ name: 'Review', rule: { type: 'all' }, assignees: [userSlot(u.rita)] }], ...training });
    await waitFor(async () => (await approve(p, u.rita, draft.number, draft.version, draft.contentHash)).status === 200, `${draft.number} approved`);
    await waitForRecord(p, u.control.apiKey, draft.number, draft.version, 'effective');
    return draft;
  }

  const campaignDone = (number: string, version: number) =>
    waitFor(async () => {
      const { result } = await testEnv().client.workflow.getHandle(trainingIds.campaign(number, version)).describe().then(
        async (d) => ({ result: d.status.name === 'COMPLETED' ? await testEnv().client.workflow.getHandle(d.workflowId).result() : null }),
        () => ({ result: null }),
      );
      return result;
    }, `the campaign of ${number} v${version}`, 150_000);

  const assignment = (who: TestUser, number: string, version: number) =>
    db()('training_assignments').where({ workflow_id: trainingIds.assignment(who.username, number, version) }).first();
  const assignmentIs = (who: TestUser, number: string, version: number, state: string) =>
    waitFor(async () => ((await assignment(who, number, version))?.state === state ? true : null), `${who.username} ${number} v${version} ${state}`, 150_000);

  const signOff = (who: TestUser, owner: TestUser, draft: { number: string; version: number; contentHash: string }, password = who.password) =>
    p.api('POST', `/api/v1/training/assignments/${owner.username}/${draft.number}/${draft.version}/sign-off`, {
      key: who.apiKey,
      body: { signature: { password, meaning: 'read_and_understood', contentHash: draft.contentHash } },
    });
  const signed = async (who: TestUser, draft: { number: string; version: number; contentHash: string }) => {
    await assignmentIs(who, draft.number, draft.version, 'assigned');
    const res = await signOff(who, who, draft);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.state, 'completed');
  };

  let procedure: { number: string; version: number; contentHash: string };

  it('assigns an effective version to exactly the active users in the roles its requirement names', async () => {
    procedure = await effective({ training: { roles: ['lab_technician'], due: '1h', reminderBefore: '10m' } });
    const state = await campaignDone(procedure.number, procedure.version);
    const expected: string[] = await db()('users').where({ active: true }).whereRaw(`'lab_technician' = any(roles)`).orderBy('id').pluck('id');
    const assigned: string[] = await db()('training_assignments').where({ document_number: procedure.number, version: 1 }).orderBy('user_id').pluck('user_id');
    await waitFor(async () => ((await db()('training_assignments').where({ document_number: procedure.number, version: 1 })).length === expected.length ? true : null), 'every assignment opened', 150_000);
    assert.equal(state.assigned, expected.length);
    assert.ok(assigned.every((id) => expected.includes(id)));
    const all: string[] = await db()('training_assignments').where({ document_number: procedure.number, version: 1 }).orderBy('user_id').pluck('user_id');
    assert.deepEqual(all, expected);
    assert.equal(await assignment(u.rev, procedure.number, 1), undefined, 'a reviewer is not assigned a technicians’ procedure');
    const mine = await p.api('GET', '/api/v1/me/training', { key: u.tech1.apiKey });
    assert.equal(mine.status, 200);
    assert.ok(mine.body.items.some((a: { document: string; state: string }) => a.document === procedure.number && a.state === 'assigned'));
  });

  it('is closed only by the person’s own signature: another user is refused with 403, over the API and straight to Temporal', async () => {
    await assignmentIs(u.tech1, procedure.number, 1, 'assigned');
    assertProblem(await signOff(u.tech2, u.tech1, procedure, u.tech2.password), 403, 'not-assignee');
    const workflowId = trainingIds.assignment(u.tech1.username, procedure.number, 1);
    const run = testEnv().client.workflow.getHandle(workflowId);
    const signature = { meaning: 'read_and_understood', contentHash: procedure.contentHash, signedAt: new Date().toISOString() };
    const bound = grantedTrainingSignOff(signature);
    // tech2 with a real grant of their own, naming themselves: the validator refuses (no delegation).
    const theirs = await issueTestGrant(u.tech2, workflowId, 'training.sign_off', bound, signature);
    assert.equal(await refusalType(run.executeUpdate(signOffUpdate, { args: [{ actor: u.tech2.actor, grant: theirs, signature }] })), 'NotAssignee');
    // Naming tech1 with tech2's grant: the recording step refuses it, nothing is written.
    assert.equal(await refusalType(run.executeUpdate(signOffUpdate, { args: [{ actor: u.tech1.actor, grant: theirs, signature }] })), 'GrantRefused');
    assert.equal(await refusalType(run.executeUpdate(signOffUpdate, { args: [{ actor: u.tech1.actor, grant: randomBytes(32).toString('base64url'), signature }] })), 'GrantRefused');
    assert.equal((await assignment(u.tech1, procedure.number, 1)).state, 'assigned');
    await signed(u.tech1, procedure);
    const sig = await db()('signatures').where({ workflow_id: workflowId }).first();
    assert.equal(sig.meaning, 'read_and_understood');
    assert.equal(sig.content_hash, procedure.contentHash);
  });

  it('cancels the open assignments of a person who loses the role', async () => {
    await assignmentIs(u.tech2, procedure.number, 1, 'assigned');
    const res = await p.api('PUT', `/api/v1/users/${u.tech2.username}/roles`, {
      key: u.admin.apiKey,
      body: { roles: ['author'], reason: 'moved to the writing team', password: u.admin.password },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    await assignmentIs(u.tech2, procedure.number, 1, 'cancelled');
    assert.equal((await assignment(u.tech2, procedure.number, 1)).ended_because, 'role_removed');
  });

  it('supersedes the open assignments of the previous version when a new version becomes effective', async () => {
    await assignmentIs(u.tech3, procedure.number, 1, 'assigned');
    const v2 = await effective({ trainingImpact: 'retrain' }, procedure.number);
    await campaignDone(procedure.number, v2.version);
    await assignmentIs(u.tech3, procedure.number, 1, 'superseded');
    await assignmentIs(u.tech3, procedure.number, 2, 'assigned');
    await assignmentIs(u.tech1, procedure.number, 2, 'assigned');
    assert.equal((await assignment(u.tech1, procedure.number, 1)).state, 'completed', 'a completed assignment stays completed');
  });

  let sop: { number: string; version: number; contentHash: string };
  /** A specification under review with rev in the technical review. */
  async function specUnderReview() {
    const draft = await createDraft(p, u.owner, `Spec ${Math.random()}`, 'Reagent specification', 'specification');
    await submit(p, u.owner, draft.number, draft.version, {
      routing: [
        { name: 'Technical review', rule: { type: 'all' }, assignees: [userSlot(u.rev)] },
        { name: 'QA approval', rule: { type: 'all' }, assignees: [userSlot(u.approver)] },
      ],
    });
    await waitFor(async () => ((await db()('tasks').where({ workflow_id: `document-approval:${draft.number}:v1`, state: 'open' }).first()) ? true : null), 'the review open');
    return draft;
  }

  it('refuses a reviewer untrained on the SOP governing the review, naming it, and lets them review once they signed it', async () => {
    sop = await effective({ training: { roles: ['reviewer'], due: '1h', reminderBefore: '10m', grace: 'until_due' } });
    const set = await p.api('PUT', `/api/v1/gate/activities/${REVIEW_OF_SPECS}/governing-documents`, { key: u.control.apiKey, body: { documents: [sop.number] } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    const spec = await specUnderReview();
    const refused = await approve(p, u.rev, spec.number, spec.version, spec.contentHash);
    assertProblem(refused, 403, 'gate-refused');
    assert.match(refused.body.detail, new RegExp(`${sop.number} v1`));
    assert.equal(refused.body.missing[0].document, sop.number);
    const audited = await db()('audit_events').where({ action: 'gate.refused', entity_id: spec.number }).first();
    assert.ok(audited, 'the refusal is in the trail');
    await signed(u.rev, sop);
    const allowed = await approve(p, u.rev, spec.number, spec.version, spec.contentHash);
    assert.equal(allowed.status, 200, JSON.stringify(allowed.body));
  });

  it('counts the previous version’s training until the new assignment is due under until_due, and not at all under none', async () => {
    const v2 = await effective({ trainingImpact: 'retrain' }, sop.number);
    await assignmentIs(u.rev, sop.number, v2.version, 'assigned');
    const spec = await specUnderReview();
    const withinGrace = await approve(p, u.rev, spec.number, spec.version, spec.contentHash);
    assert.equal(withinGrace.status, 200, JSON.stringify(withinGrace.body));

    const v3 = await effective({ training: { roles: ['reviewer'], due: '1h', reminderBefore: '10m', grace: 'none' } }, sop.number);
    await assignmentIs(u.rev, sop.number, v3.version, 'assigned');
    const spec2 = await specUnderReview();
    const noGrace = await approve(p, u.rev, spec2.number, spec2.version, spec2.contentHash);
    assertProblem(noGrace, 403, 'gate-refused');
    assert.equal(noGrace.body.missing[0].version, v3.version);
    await signed(u.rev, v3);
    const allowed = await approve(p, u.rev, spec2.number, spec2.version, spec2.contentHash);
    assert.equal(allowed.status, 200, JSON.stringify(allowed.body));
    sop = v3;
  });

  it('refuses CAPA verification by someone untrained on its governing SOP, and accepts it once they signed', async () => {
    const set = await p.api('PUT', `/api/v1/gate/activities/${CAPA_VERIFICATION}/governing-documents`, { key: u.control.apiKey, body: { documents: [sop.number] } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    const { number } = await createCapa(p, u.owner, { sources: [{ type: 'sample', id: `ACC-${Date.now()}` }] });
    await toImplementation(p, { qa: u.qa, owner: u.owner }, number, [
      { type: 'corrective', description: 'Recalibrate', owner: { user: u.owner.username }, dueAt: inHours(24) },
    ]);
    await act(p, u.owner, number, '/actions/A1/complete', { evidence: 'Done' });
    await waitForStage(p, u.qa, number, 'effectiveness_review');
    const results = { results: [{ criterionId: 'C1', met: true, evidence: 'Rate 1%' }] };
    const refused = await p.api('POST', `/api/v1/capas/${number}/effectiveness`, { key: u.qa.apiKey, body: results });
    assertProblem(refused, 403, 'gate-refused');
    await signed(u.qa, sop);
    await act(p, u.qa, number, '/effectiveness', results);
  });

  it('lists the training matrix of a document and of a role, keyset paged', async () => {
    const first = await p.api('GET', `/api/v1/training/matrix/documents/${procedure.number}?limit=1`, { key: u.control.apiKey });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.items.length, 1);
    assert.ok(first.body.next);
    const second = await p.api('GET', `/api/v1/training/matrix/documents/${procedure.number}?limit=1&after=${first.body.next}`, { key: u.control.apiKey });
    assert.equal(second.status, 200);
    assert.ok(second.body.items[0].username > first.body.items[0].username);
    const byRole = await p.api('GET', '/api/v1/training/matrix/roles/reviewer?limit=200', { key: u.control.apiKey });
    assert.equal(byRole.status, 200);
    const rev = byRole.body.items.find((row: { username: string }) => row.username === u.rev.username);
    assert.ok(rev.documents.some((d: { document: string; lastSigned: number }) => d.document === sop.number && d.lastSigned === sop.version));
    assertProblem(await p.api('GET', `/api/v1/training/matrix/documents/${procedure.number}?after=nonsense!`, { key: u.control.apiKey }), 400, 'validation');
    assertProblem(await p.api('GET', `/api/v1/training/matrix/roles/reviewer`, { key: u.tech1.apiKey }), 403, 'forbidden');
  });

  it('holds a requirement set with a version from the moment the version is effective, before its campaign wrote it', async () => {
    // The state an approval leaves for an instant: the version effective with the requirement document control set,
    // its campaign not yet planned (no training_requirements row, no impact decided, nobody assigned).
    const draft = await createDraft(p, u.control, `Window ${Math.random()}`, 'Gate window procedure', 'form');
    const row = await db()('document_versions as v').join('documents as d', 'd.id', 'v.document_id').where({ 'd.number': draft.number, 'v.version': 1 }).first('v.id', 'v.document_id');
    const requirement = { roles: ['reviewer'], due: '1h', reminderBefore: '10m', retrainOnRevision: true, grace: 'until_due' };
    await db()('document_versions').where({ id: row.id }).update({ state: 'effective', effective_at: new Date(), training_requirement: JSON.stringify(requirement) });
    await db()('activity_governing_documents').insert({ activity: UNPLANNED, document_id: row.document_id, set_by: u.control.username });
    const gate = () => checkGate(db(), { userId: u.rev.actor.userId, roles: u.rev.actor.roles }, { activity: UNPLANNED });
    assert.deepEqual(await gate(), { ok: false, missing: [{ kind: 'training', document: draft.number, version: 1, reason: 'not_assigned', dueAt: null }] });
    // Decided at submission to retire the requirement: nothing is required, before and after the campaign (the
    // version keeps the requirement it set, so only the retirement can let the person through).
    await db()('document_versions').where({ id: row.id }).update({ training_impact: 'retire' });
    assert.deepEqual(await gate(), { ok: true });
  });

  it('records nothing for a campaign started straight through Temporal for a version that is not effective', async () => {
    const draft = await createDraft(p, u.control, `Draft ${Math.random()}`, 'Never effective', 'form');
    const row = await db()('document_versions as v').join('documents as d', 'd.id', 'v.document_id').where({ 'd.number': draft.number, 'v.version': 1 }).first('v.id', 'v.document_id', 'd.title');
    const handle = await testEnv().client.workflow.start('trainingCampaignWorkflow', {
      workflowId: trainingIds.campaign(draft.number, 1),
      taskQueue: p.taskQueue,
      args: [{ documentId: row.document_id, documentNumber: draft.number, versionId: row.id, version: 1, title: row.title }],
    });
    const result = await handle.result();
    assert.equal(result.stage, 'refused');
    assert.equal((await db()('training_assignments').where({ document_number: draft.number })).length, 0);
    assert.ok(versionPath(draft.number, 1));
  });
});
