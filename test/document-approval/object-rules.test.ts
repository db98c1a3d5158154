import assert from 'node:assert/strict';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { documentActivities, type DocRef } from '../../activities/documents';
import type { Mailer } from '../../activities/mailer';
import { decideUpdate, documentStateQuery } from '../../common/document-approval';
import { FailureType } from '../../common/failures';
import { grantedArgs } from '../../common/grants';
import { workflowIds } from '../../common/ids';
import { findVersion } from '../../db/documents';
import { issueGrant } from '../../db/grants';
import type { documentApprovalWorkflow } from '../../workflows';
import { assertProblem, refused } from '../api/support';
import { approve, createDraft, getVersion, submit, versionPath } from '../helpers/documents';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';

type Handle = WorkflowHandle<typeof documentApprovalWorkflow>;

describe('document control: object-level rules', () => {
  let p: Platform;
  let u: Record<'author' | 'olga' | 'rita' | 'april' | 'tech' | 'quinn' | 'quincy' | 'control' | 'admin', TestUser>;

  before(async () => {
    p = await startPlatform();
    u = await makeUsers({
      author: ['author'],
      olga: ['author'],
      rita: ['reviewer'],
      april: ['approver'],
      tech: ['lab_technician'],
      quinn: ['qa_manager'],
      quincy: ['qa_manager'],
      control: ['document_control'],
      admin: ['admin'],
    });
  });
  after(() => p.stop());

  const db = () => testEnv().db;
  const grantsFor = async (workflowId: string) =>
    Number((await db()('action_grants').where({ workflow_id: workflowId }).count('* as n'))[0].n);
  const post = (who: TestUser, path: string, body: unknown) => p.api('POST', path, { key: who.apiKey, body });
  const sop = () => createDraft(p, u.author, undefined, 'Balance calibration', 'sop');

  /** A submission that must be refused: no run, no grant, the version still an unsubmitted draft. */
  async function refusedSubmission(draft: { number: string; version: number }, body: unknown, who = u.author) {
    const workflowId = workflowIds.documentApproval(draft.number, draft.version);
    const res = await refused(() => post(who, `${versionPath(draft.number, draft.version)}/submit`, body), { notStarted: [workflowId] });
    assert.equal(await grantsFor(workflowId), 0, 'no grant was written');
    const row = await findVersion(db(), draft.number, draft.version);
    assert.deepEqual({ state: row?.state, workflowId: row?.workflow_id }, { state: 'draft', workflowId: null });
    return res;
  }
  const fields = (res: { body: { errors?: { field: string }[] } }) => (res.body.errors ?? []).map((e) => e.field);

  describe('routing templates', () => {
    it('refuses an SOP whose only approver is a lab technician, naming the stage and the role missing', async () => {
      const draft = await sop();
      const res = await refusedSubmission(draft, { routing: [{ name: 'QA approval', assignees: [{ user: u.tech.username }] }] });
      assertProblem(res, 422, 'routing-template', 'body.routing.0.assignees.0');
      assert.match(res.body.detail, new RegExp(`${u.tech.username} holds none of the roles stage "QA approval"`));
      assert.match(res.body.detail, /must go through stage "Technical review"/);
      assert.match(res.body.detail, /must go through stage "Document control"/);

      // A form takes one review, but not by a lab technician either.
      const form = await createDraft(p, u.author);
      const alone = await refusedSubmission(form, { routing: [{ name: 'Review', assignees: [{ user: u.tech.username }] }] });
      assertProblem(alone, 422, 'routing-template', 'body.routing.0.assignees.0');
      const byRole = await refusedSubmission(form, { routing: [{ name: 'Review', assignees: [{ role: 'lab_technician' }] }] });
      assertProblem(byRole, 422, 'routing-template', 'body.routing.0.assignees.0');
    });

    it('refuses a named assignee who does not hold the role of the stage they are put on', async () => {
      const draft = await sop();
      const res = await refusedSubmission(draft, {
        routing: [
          { name: 'Technical review', assignees: [{ user: u.rita.username }] },
          // Rita reviews; she does not approve.
          { name: 'QA approval', assignees: [{ user: u.rita.username }] },
          { name: 'Document control', assignees: [{ user: u.control.username }] },
        ],
      });
      assertProblem(res, 422, 'routing-template', 'body.routing.1.assignees.0');
      assert.match(res.body.detail, /QA approval/);
    });

    it('refuses an SOP routing without document control last, with stages out of order, or unknown to the template', async () => {
      const draft = await sop();
      const noControl = await refusedSubmission(draft, {
        routing: [
          { name: 'Technical review', assignees: [{ user: u.rita.username }] },
          { name: 'QA approval', assignees: [{ user: u.april.username }] },
        ],
      });
      assertProblem(noControl, 422, 'routing-template', 'body.routing.1.name');
      assert.match(noControl.body.detail, /document control signs a sop last/);
      assert.ok(fields(noControl).includes('body.routing'), 'the missing required stage is named');

      const reversed = await refusedSubmission(draft, {
        routing: [
          { name: 'QA approval', assignees: [{ user: u.april.username }] },
          { name: 'Technical review', assignees: [{ user: u.rita.username }] },
          { name: 'Document control', assignees: [{ user: u.control.username }] },
        ],
      });
      assertProblem(reversed, 422, 'routing-template', 'body.routing.1.name');
      assert.match(reversed.body.detail, /comes before "QA approval"/);

      const unknown = await refusedSubmission(draft, {
        routing: [
          { name: 'Technical review', assignees: [{ user: u.rita.username }] },
          { name: 'Quick look', assignees: [{ user: u.april.username }] },
          { name: 'QA approval', assignees: [{ user: u.april.username }] },
          { name: 'Document control', assignees: [{ user: u.control.username }] },
        ],
      });
      assertProblem(unknown, 422, 'routing-template', 'body.routing.1.name');
    });

    it('refuses the same person named in two stages of one routing', async () => {
      const draft = await sop();
      const res = await refusedSubmission(draft, {
        routing: [
          { name: 'Technical review', assignees: [{ user: u.quinn.username }] },
          { name: 'QA approval', assignees: [{ user: u.quinn.username }] },
          { name: 'Document control', assignees: [{ user: u.control.username }] },
        ],
      });
      assertProblem(res, 422, 'routing-template', 'body.routing.1.assignees.0');
      assert.match(res.body.detail, /one person signs at most one stage per round/);
    });

    it('accepts a routing that fits the template, and keeps a reassigned slot within the stage role', async () => {
      const draft = await sop();
      const started = await submit(p, u.author, draft.number, draft.version, {
        routing: [
          { name: 'technical review', assignees: [{ user: u.rita.username }] },
          { name: 'QA approval', assignees: [{ role: 'approver' }] },
          { name: 'Document control', assignees: [{ role: 'document_control' }] },
        ],
      });
      const { workflowId } = started;
      assert.equal(workflowId, workflowIds.documentApproval(draft.number, draft.version));
      await waitFor(
        async () => (await getVersion(p, u.author.apiKey, draft.number, draft.version)).process?.stages[0].status === 'active',
        'open',
      );

      const path = `${versionPath(draft.number, draft.version)}/reassign`;
      const toTech = { from: `user:${u.rita.username}`, to: { user: u.tech.username }, reason: 'Rita is away' };
      const refusedTech = await refused(() => post(u.control, path, toTech), { runs: [workflowId] });
      assertProblem(refusedTech, 422, 'routing-template', 'body.to');
      const toRole = { from: `user:${u.rita.username}`, to: { role: 'lab_technician' }, reason: 'Rita is away' };
      assertProblem(await refused(() => post(u.control, path, toRole), { runs: [workflowId] }), 422, 'routing-template', 'body.to');
      const toQuinn = { from: `user:${u.rita.username}`, to: { user: u.quinn.username }, reason: 'Rita is away' };
      assert.equal((await post(u.control, path, toQuinn)).status, 200);
    });

    it('lets document control or an admin edit a template (audited with old and new values), and enforces the edit', async () => {
      const list = await p.api('GET', '/api/v1/routing-templates', { key: u.rita.apiKey });
      assert.equal(list.status, 200);
      const sopTemplate = list.body.items.find((t: { docType: string }) => t.docType === 'sop');
      assert.equal(sopTemplate.documentControlFinal, true);
      assert.equal(sopTemplate.stages.at(-1).name, 'Document control');

      const original = (await p.api('GET', '/api/v1/routing-templates/other', { key: u.control.apiKey })).body;
      const path = '/api/v1/routing-templates/other';
      const stricter = {
        stages: [...original.stages, { name: 'Document control', roles: ['document_control'] }],
        documentControlFinal: true,
      };
      const templateRows = async () => db()('routing_templates').where({ doc_type: 'other' }).first('stages', 'document_control_final');
      const before = await templateRows();

      assertProblem(await refused(() => p.api('PUT', path, { key: u.author.apiKey, body: stricter })), 403, 'forbidden');
      const lastNotControl = { stages: original.stages, documentControlFinal: true };
      assertProblem(
        await refused(() => p.api('PUT', path, { key: u.control.apiKey, body: lastNotControl })),
        422,
        'invalid-template',
        'body.documentControlFinal',
      );
      assert.deepEqual(await templateRows(), before, 'a refused edit changes nothing');

      const saved = await p.api('PUT', path, { key: u.control.apiKey, body: stricter });
      try {
        assert.equal(saved.status, 200, JSON.stringify(saved.body));
        const event = await db()('audit_events')
          .where({ action: 'routing_template.updated', entity_id: 'other' })
          .orderBy('seq', 'desc')
          .first('actor', 'details');
        assert.equal(event.actor, u.control.username);
        const byField = Object.fromEntries(event.details.changes.map((c: { field: string }) => [c.field, c]));
        assert.deepEqual(byField.document_control_final, { field: 'document_control_final', old: false, new: true });
        assert.deepEqual(
          byField.stages.old.map((s: { name: string }) => s.name),
          original.stages.map((s: { name: string }) => s.name),
        );
        assert.equal(byField.stages.new.at(-1).name, 'Document control');

        // The edited template decides the next submission.
        const draft = await createDraft(p, u.author, undefined, 'Misc note', 'other');
        const res = await refusedSubmission(draft, {
          routing: [
            { name: 'Review', assignees: [{ user: u.rita.username }] },
            { name: 'Approval', assignees: [{ user: u.april.username }] },
          ],
        });
        assertProblem(res, 422, 'routing-template');
        assert.match(res.body.detail, /must go through stage "Document control"/);
      } finally {
        const restored = await p.api('PUT', path, {
          key: u.admin.apiKey,
          body: { stages: original.stages, documentControlFinal: original.documentControlFinal },
        });
        assert.equal(restored.status, 200, JSON.stringify(restored.body));
      }
    });
  });

  describe('versions and drafts', () => {
    it("lets only the document's owner or document control create a version", async () => {
      const draft = await createDraft(p, u.author);
      const versions = `/api/v1/documents/${draft.number}/versions`;
      const other = await refused(() => post(u.olga, versions, { content: 'my take on it' }));
      assertProblem(other, 403, 'forbidden');
      assert.match(other.body.detail, /only the owner/);

      // Document control may: once the owner's stale draft is out of the way, it adds the next version.
      assert.equal((await post(u.control, `${versionPath(draft.number, 1)}/cancel`, { reason: 'stale' })).status, 200);
      assertProblem(await refused(() => post(u.olga, versions, { content: 'still not mine' })), 403, 'forbidden');
      const byControl = await post(u.control, versions, { content: 'rewritten by document control' });
      assert.equal(byControl.status, 201, JSON.stringify(byControl.body));
      assert.equal(byControl.body.version, 2);
    });

    it('lets document control cancel a stale draft, audited with its reason and field changes; nobody else, and nothing submitted', async () => {
      const draft = await createDraft(p, u.author);
      const cancel = `${versionPath(draft.number, draft.version)}/cancel`;
      assertProblem(await refused(() => post(u.author, cancel, { reason: 'mine anyway' })), 403, 'forbidden');
      assertProblem(await refused(() => post(u.control, cancel, {})), 400, 'validation', 'body.reason');
      assertProblem(await refused(() => post(u.control, `${versionPath(draft.number, 9)}/cancel`, { reason: 'x' })), 404, 'not-found');

      const res = await post(u.control, cancel, { reason: 'untouched for six months' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.state, 'withdrawn');
      const row = await findVersion(db(), draft.number, draft.version);
      assert.equal(row?.state, 'withdrawn');
      assert.ok(row?.closed_at);
      const event = await db()('audit_events')
        .where({ action: 'document.draft_cancelled', entity_id: draft.number })
        .first('actor', 'details');
      assert.equal(event.actor, u.control.username);
      assert.equal(event.details.reason, 'untouched for six months');
      const state = event.details.changes.find((c: { field: string }) => c.field === 'state');
      assert.deepEqual(state, { field: 'state', old: 'draft', new: 'withdrawn' });
      assert.ok(event.details.changes.some((c: { field: string; old: unknown }) => c.field === 'closed_at' && c.old === null));

      // A cancelled draft is neither cancelled again nor submitted.
      assertProblem(await refused(() => post(u.control, cancel, { reason: 'again' })), 409, 'not-a-draft');
      const again = await refused(
        () =>
          post(u.author, `${versionPath(draft.number, draft.version)}/submit`, {
            routing: [{ name: 'Review', assignees: [{ user: u.rita.username }] }],
          }),
        { notStarted: [workflowIds.documentApproval(draft.number, draft.version)] },
      );
      assertProblem(again, 409, 'draft-cancelled');
      assert.equal(await grantsFor(workflowIds.documentApproval(draft.number, draft.version)), 0);

      // A version under review is not a draft: document control withdraws it through its run instead.
      const live = await createDraft(p, u.author);
      const { workflowId } = await submit(p, u.author, live.number, live.version, {
        routing: [{ name: 'Review', assignees: [{ user: u.rita.username }] }],
      });
      await waitFor(
        async () => (await getVersion(p, u.author.apiKey, live.number, live.version)).process?.stages[0].status === 'active',
        'open',
      );
      const underReview = await refused(() => post(u.control, `${versionPath(live.number, live.version)}/cancel`, { reason: 'x' }), {
        runs: [workflowId],
      });
      assertProblem(underReview, 409, 'not-a-draft');
    });
  });

  describe('one person signs at most one stage per round', () => {
    it('refuses a second stage by the same signer at the API, in the run and in the recording step, writing nothing', async () => {
      const draft = await sop();
      // Both review stages are open to any QA manager, so one of them could reach both.
      const { workflowId } = await submit(p, u.author, draft.number, draft.version, {
        routing: [
          { name: 'Technical review', rule: { type: 'any' }, assignees: [{ role: 'qa_manager' }] },
          { name: 'QA approval', rule: { type: 'any' }, assignees: [{ role: 'qa_manager' }] },
          { name: 'Document control', assignees: [{ user: u.control.username }] },
        ],
      });
      const stageActive = (i: number) =>
        waitFor(
          async () => (await getVersion(p, u.author.apiKey, draft.number, draft.version)).process?.stages[i].status === 'active',
          `stage ${i + 1}`,
        );
      await stageActive(0);
      assert.equal((await approve(p, u.quinn, draft.number, draft.version, draft.contentHash)).status, 200);
      await stageActive(1);

      // The API refuses before it writes a grant.
      const grants = await grantsFor(workflowId);
      const second = await refused(() => approve(p, u.quinn, draft.number, draft.version, draft.contentHash), { runs: [workflowId] });
      assertProblem(second, 409, 'duplicate-decision');
      assert.match(second.body.detail, /already decided stage "Technical review"/);
      const rejection = await refused(
        () => post(u.quinn, `${versionPath(draft.number, draft.version)}/decisions`, { decision: 'reject', comment: 'no' }),
        { runs: [workflowId] },
      );
      assertProblem(rejection, 409, 'duplicate-decision');
      assert.equal(await grantsFor(workflowId), grants);

      // Sent straight to the run with a genuine grant, the validator refuses it before it enters history.
      const signature = { meaning: 'approval', contentHash: draft.contentHash, signedAt: new Date().toISOString() };
      const args = { decision: 'approve' as const, signature };
      const grant = await issueGrant(db(), {
        userId: u.quinn.actor.userId,
        workflowId,
        action: 'document.decide',
        args: grantedArgs.decide(args),
        signature: { meaning: 'approval', contentHash: draft.contentHash, passwordVerifiedAt: signature.signedAt },
        ttlMs: 60_000,
      });
      const handle: Handle = testEnv().client.workflow.getHandle(workflowId);
      const historyBefore = (await handle.describe()).historyLength;
      await assert.rejects(
        handle.executeUpdate(decideUpdate, { args: [{ ...args, actor: u.quinn.actor, grant }] }),
        (err) =>
          err instanceof WorkflowUpdateFailedError &&
          err.cause instanceof ApplicationFailure &&
          err.cause.type === FailureType.DuplicateDecision &&
          /one person signs at most one stage per round/.test(err.cause.message),
      );
      assert.equal((await handle.describe()).historyLength, historyBefore, 'the refused update left no trace in history');

      // The recording step refuses it too, whatever the run was sent: nothing written, the grant not consumed.
      const row = (await findVersion(db(), draft.number, draft.version))!;
      const doc: DocRef = {
        workflowId,
        documentId: row.document_id,
        documentNumber: row.number,
        versionId: row.id,
        version: row.version,
        title: row.title,
        authorId: row.author_id,
      };
      const activities = documentActivities({ db: db(), mailer: {} as Mailer, publicUrl: 'http://labflow.test', mailDomain: 'lab.test' });
      const env = new MockActivityEnvironment({ activityId: 'record-decision-test', workflowExecution: { workflowId, runId: 'test-run' } });
      const writes = async () => ({
        signatures: Number((await db()('signatures').where({ workflow_id: workflowId }).count('* as n'))[0].n),
        doneTasks: Number((await db()('tasks').where({ workflow_id: workflowId, state: 'done' }).count('* as n'))[0].n),
        events: Number((await db()('audit_events').whereRaw(`details->>'workflowId' = ?`, [workflowId]).count('* as n'))[0].n),
      });
      const writtenBefore = await writes();
      await assert.rejects(
        env.run(activities.recordDecision, {
          doc,
          round: 1,
          stageIndex: 1,
          stageName: 'QA approval',
          slotKey: 'role:qa_manager',
          actor: u.quinn.actor,
          grant,
          ...args,
        }),
        (err) => err instanceof ApplicationFailure && err.type === FailureType.DuplicateDecision && err.nonRetryable === true,
      );
      assert.deepEqual(await writes(), writtenBefore, 'the recording step wrote nothing');
      assert.equal((await db()('action_grants').where({ id: grant }).first('consumed_at')).consumed_at, null);

      // Another QA manager signs the second stage; the run went on unharmed.
      assert.equal((await approve(p, u.quincy, draft.number, draft.version, draft.contentHash)).status, 200);
      await stageActive(2);
      const state = await handle.query(documentStateQuery);
      assert.deepEqual(
        state.stages.slice(0, 2).map((s) => s.slots[0].decision?.username),
        [u.quinn.username, u.quincy.username],
      );
    });
  });
});
