import assert from 'node:assert/strict';
import { capaStateQuery } from '../../common/capa';
import { userDeactivatedSignal } from '../../common/deactivation';
import { documentStateQuery } from '../../common/document-approval';
import { testEnv } from '../setup/env';
import { approve, versionPath, waitForState } from '../helpers/documents';
import { startPlatform, testApiConfig, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { oneStage, underReview } from '../api/support';
import { act, createCapa, fast } from '../capa/support';
import { addNote, createPatient, patientUrl } from '../patients/support';
import { inspected, mustAct } from '../sample-intake/support';

/** Deactivation through the API hands a person's open work over in each process, end to end on real runs. */
describe('deactivating a user hands their open work over', () => {
  let p: Platform;
  let u: Record<
    'admin' | 'author' | 'leaver' | 'rita' | 'control' | 'qa' | 'initiator' | 'tech' | 'director' | 'doc' | 'carla' | 'writer',
    TestUser
  >;

  before(async () => {
    // Summaries come from the local extractive summarizer: no provider is needed to reach a review.
    const summary = { ...testApiConfig('').summary, providers: [] };
    p = await startPlatform({ apiConfig: { summary } });
    u = await makeUsers({
      admin: ['admin'],
      author: ['author'],
      leaver: ['reviewer', 'lab_technician'],
      rita: ['reviewer'],
      control: ['document_control'],
      qa: ['qa_manager'],
      initiator: ['lab_technician'],
      tech: ['lab_technician'],
      director: ['lab_director'],
      doc: ['clinician'],
      carla: ['clinician'],
      writer: ['author'],
    });
  });
  after(() => p.stop());

  const db = () => testEnv().db;
  const deactivate = (who: TestUser) =>
    p.api('POST', `/api/v1/users/${who.username}/deactivate`, { key: u.admin.apiKey, body: { password: u.admin.password, reason: 'left the lab' } });

  it('moves review slots to document control and CAPA work to the QA manager, with tasks, audit and nothing forged', async () => {
    const routing = oneStage([u.leaver, u.rita]);
    const v = await underReview(p, u.author, routing);
    const docRun = testEnv().client.workflow.getHandle(v.workflowId);
    const { number } = await createCapa(p, u.initiator);
    await act(p, u.qa, number, '/triage', { decision: 'accept', severity: 2, occurrence: 2, owner: u.leaver.username, durations: fast });
    const capaRun = testEnv().client.workflow.getHandle(`capa:${number}`);

    // Told while the user is still active, the run hands nothing over and the attempt is a security event.
    await docRun.signal(userDeactivatedSignal, { userId: u.leaver.actor.userId, username: u.leaver.username });
    await waitFor(
      async () =>
        (await db()('audit_events').where({ action: 'security.grant_refused', entity_id: v.number })).find(
          (e) => e.details.attempted === 'document.user_deactivated_signal',
        ),
      'the forged notice refused',
    );
    assert.equal((await docRun.query(documentStateQuery)).stages[0].slots[0].assignee.kind, 'user');

    const res = await deactivate(u.leaver);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.ok(res.body.handedOver.document.includes(v.workflowId));
    assert.deepEqual(res.body.handedOver.capa, [`capa:${number}`]);

    const state = await waitFor(async () => {
      const s = await docRun.query(documentStateQuery);
      return s.stages[0].slots[0].assignee.kind === 'role' ? s : null;
    }, 'the review slot handed over');
    assert.deepEqual(state.stages[0].slots[0].assignee, { kind: 'role', role: 'document_control' });
    assert.ok(state.pendingAssignees.includes('role:document_control'));
    const tasks = await db()('tasks').where({ workflow_id: v.workflowId, kind: 'document.review' }).orderBy('created_at');
    assert.deepEqual(
      tasks.filter((t) => t.assignee_user_id === u.leaver.actor.userId).map((t) => t.state),
      ['reassigned'],
    );
    assert.equal(tasks.filter((t) => t.assignee_role === 'document_control' && t.state === 'open').length, 1);
    const audit = await db()('audit_events').where({ entity_id: v.number, action: 'document.stage_reassigned' }).orderBy('seq');
    assert.deepEqual(
      audit.map((e) => [e.details.stage, e.details.from, e.details.to, e.details.reason]),
      [['Review', `user:${u.leaver.username}`, 'role:document_control', 'user deactivated']],
    );
    const told = await db()('notifications').where({ user_id: u.control.actor.userId, kind: 'document.review_requested' });
    assert.ok(told.some((n) => n.title.startsWith('Review handed over')), 'document control is told');

    // Document control now decides the slot the leaver held.
    const decided = await approve(p, u.control, v.number, v.version, v.contentHash);
    assert.equal(decided.status, 200, JSON.stringify(decided.body));

    const capa = await waitFor(async () => {
      const s = await capaRun.query(capaStateQuery);
      return s.owner?.kind === 'user' && s.owner.userId === u.qa.actor.userId ? s : null;
    }, 'the CAPA handed to its QA manager');
    assert.equal(capa.reassignments[0].from, `user:${u.leaver.username}`);
  });

  /** The security event a notice about a user who is still active leaves, once the run refused it. */
  const refusedNotice = (entityId: string, attempted: string) =>
    waitFor(
      async () =>
        (await db()('audit_events').where({ action: 'security.grant_refused', entity_id: entityId })).find(
          (e) => e.details.attempted === attempted,
        ),
      `the notice about an active user refused (${attempted})`,
    );
  const openTasks = (workflowId: string, kind?: string) =>
    db()('tasks')
      .where({ workflow_id: workflowId, state: 'open', ...(kind && { kind }) })
      .orderBy('created_at')
      .select('task_key', 'kind', 'assignee_user_id', 'assignee_role');

  it("moves a submitter's recollection requests to the lab director, in running and ended sample runs; later ones go there too", async () => {
    // One specimen partly rejected (its run goes on), one rejected whole (its run has ended): each leaves a recollection request.
    const running = await inspected(p, u.doc, u.tech);
    await mustAct(p, u.tech, running.accession, 'accept');
    await mustAct(p, u.tech, running.accession, 'reject', { code: 'QS', condition: 'Not enough for TSH', disposition: 'retained', tests: ['TSH'] });
    const ended = await inspected(p, u.doc, u.tech);
    await mustAct(p, u.tech, ended.accession, 'reject', { code: 'RN', condition: 'Contaminated', disposition: 'discarded' });
    await waitFor(
      async () => (await testEnv().client.workflow.getHandle(ended.workflowId).describe()).status.name === 'COMPLETED',
      'the rejected specimen’s run ended',
    );
    for (const { workflowId } of [running, ended]) {
      assert.deepEqual(
        (await openTasks(workflowId, 'sample.recollection')).map((t) => t.assignee_user_id),
        [u.doc.actor.userId],
      );
    }

    // Told while the submitter is still active, the run hands nothing over and the attempt is a security event.
    const run = testEnv().client.workflow.getHandle(running.workflowId);
    await run.signal(userDeactivatedSignal, { userId: u.doc.actor.userId, username: u.doc.username });
    await refusedNotice(running.accession, 'sample.user_deactivated_signal');
    assert.equal((await openTasks(running.workflowId, 'sample.recollection'))[0].assignee_user_id, u.doc.actor.userId);

    const res = await deactivate(u.doc);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.handedOver.sample, [running.workflowId], 'only the running specimen’s run is told');

    for (const { accession, workflowId } of [running, ended]) {
      const handed = await waitFor(async () => {
        const tasks = await openTasks(workflowId, 'sample.recollection');
        return tasks.length === 1 && tasks[0].assignee_role === 'lab_director' ? tasks : null;
      }, `${accession}'s recollection handed over`);
      assert.equal(handed[0].assignee_user_id, null);
      const closed = await db()('tasks').where({ workflow_id: workflowId, assignee_user_id: u.doc.actor.userId }).pluck('state');
      assert.deepEqual(closed, ['reassigned']);
      const audit = await db()('audit_events').where({ entity_id: accession, action: 'sample.work_handed_over' });
      assert.deepEqual(
        audit.map((e) => [e.actor, e.details.from, e.details.to, e.details.reason, e.details.tasks.length]),
        [[workflowId === running.workflowId ? 'system:sample-intake' : u.admin.username, `user:${u.doc.username}`, 'role:lab_director', 'user deactivated', 1]],
      );
    }
    const told = await waitFor(
      async () => (await db()('notifications').where({ user_id: u.director.actor.userId, kind: 'sample.work_handed_over' })).length === 2,
      'the lab director told of both specimens',
    );
    assert.ok(told);

    // A rejection after the submitter left (of the last test: the whole specimen) asks the lab director for the recollection.
    await mustAct(p, u.tech, running.accession, 'reject', { code: 'QS', condition: 'Not enough for CMP', disposition: 'retained', tests: ['CMP'] });
    assert.deepEqual(
      (await openTasks(running.workflowId, 'sample.recollection')).map((t) => [t.task_key, t.assignee_user_id, t.assignee_role]),
      [[`${running.workflowId}:recollect:CMP`, null, 'lab_director']],
    );
  });

  it("hands a deactivated requester's summary review to the patient's care team: tasks, Assignees, audit; a teammate signs", async () => {
    const patient = await createPatient(p, u.carla);
    await addNote(p, u.carla, patient.id);
    const leaver = (await makeUsers({ requester: ['clinician'] })).requester;
    const joined = await p.api('POST', `${patientUrl(patient.id)}/clinicians`, { key: u.carla.apiKey, body: { username: leaver.username } });
    assert.ok([200, 201].includes(joined.status), JSON.stringify(joined.body));
    const requested = await p.api('POST', `/api/v1/patients/${patient.id}/summaries`, { key: leaver.apiKey, body: {} });
    assert.equal(requested.status, 202, JSON.stringify(requested.body));
    const jobId: string = requested.body.jobId;
    const jobUrl = `/api/v1/summary-jobs/${encodeURIComponent(jobId)}`;
    await waitFor(async () => (await p.api('GET', jobUrl, { key: u.carla.apiKey })).body.stage === 'ready', 'the summary ready');
    const run = testEnv().client.workflow.getHandle(jobId);
    const assignees = async () => (await run.describe()).searchAttributes.Assignees as string[] | undefined;
    assert.deepEqual(await assignees(), [`user:${leaver.username}`]);

    await run.signal(userDeactivatedSignal, { userId: leaver.actor.userId, username: leaver.username });
    await refusedNotice(patient.id, 'soap.user_deactivated_signal');
    assert.deepEqual(await assignees(), [`user:${leaver.username}`]);
    assert.deepEqual(await openTasks(jobId), []);

    const res = await deactivate(leaver);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.handedOver.summary, [jobId]);
    await waitFor(async () => (await assignees())?.includes(`user:${u.carla.username}`), 'Assignees name the care team');
    assert.deepEqual(await assignees(), [`user:${u.carla.username}`]);
    const tasks = await openTasks(jobId);
    assert.deepEqual(
      tasks.map((t) => [t.kind, t.assignee_user_id]),
      [['summary.review', u.carla.actor.userId]],
    );
    const audit = await db()('audit_events').where({ entity_id: patient.id, action: 'summary.review_handed_over' });
    assert.deepEqual(
      audit.map((e) => [e.details.workflowId, e.details.from, e.details.to, e.details.reason]),
      [[jobId, `user:${leaver.username}`, [`user:${u.carla.username}`], 'user deactivated']],
    );

    const summary = await p.api('GET', `${jobUrl}/summary`, { key: u.carla.apiKey });
    const reviewed = await p.api('POST', `${jobUrl}/review`, {
      key: u.carla.apiKey,
      body: { decision: 'approve', signature: { password: u.carla.password, meaning: 'approval', contentHash: summary.body.contentHash } },
    });
    assert.equal(reviewed.status, 200, JSON.stringify(reviewed.body));
    assert.equal(reviewed.body.stage, 'approved');
    assert.deepEqual(await db()('tasks').where({ workflow_id: jobId }).pluck('state'), ['done']);
  });

  it("moves a deactivated author's revision to document control, who uploads it", async () => {
    const v = await underReview(p, u.writer, oneStage([u.rita]));
    const asked = await p.api('POST', `${v.path}/decisions`, { key: u.rita.apiKey, body: { decision: 'request_changes', comment: 'Add scope' } });
    assert.equal(asked.status, 200, JSON.stringify(asked.body));
    await waitForState(p, u.control.apiKey, v.number, v.version, 'changes_requested');
    assert.deepEqual(
      (await openTasks(v.workflowId)).map((t) => [t.kind, t.assignee_user_id]),
      [['document.revise', u.writer.actor.userId]],
    );
    const early = await p.api('POST', `${v.path}/revision`, { key: u.control.apiKey, body: { content: 'revised by control' } });
    assert.equal(early.status, 403, 'document control revises only once the author is gone');

    const res = await deactivate(u.writer);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.ok(res.body.handedOver.document.includes(v.workflowId));
    const handed = await waitFor(async () => {
      const tasks = await openTasks(v.workflowId);
      return tasks.length === 1 && tasks[0].assignee_role === 'document_control' ? tasks : null;
    }, 'the revision handed to document control');
    assert.equal(handed[0].kind, 'document.revise');
    const audit = await db()('audit_events').where({ entity_id: v.number, action: 'document.revision_reassigned' });
    assert.deepEqual(
      audit.map((e) => [e.details.from, e.details.to, e.details.reason]),
      [[`user:${u.writer.username}`, 'role:document_control', 'user deactivated']],
    );

    const revised = await p.api('POST', `${versionPath(v.number, v.version)}/revision`, { key: u.control.apiKey, body: { content: 'revised by control' } });
    assert.equal(revised.status, 200, JSON.stringify(revised.body));
    assert.equal(revised.body.round, 2);
    assert.deepEqual(
      await db()('tasks').where({ workflow_id: v.workflowId, kind: 'document.revise' }).orderBy('created_at').pluck('state'),
      ['reassigned', 'done'],
    );
  });
});
