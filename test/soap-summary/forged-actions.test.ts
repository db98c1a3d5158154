import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { FailureType } from '../../common/failures';
import type { GrantAction } from '../../common/grants';
import { reviewSummaryUpdate, soapGrantedArgs, summaryStateQuery, supersedeSummarySignal } from '../../common/soap-summary';
import { storeReviewTexts } from '../../db/summaries';
import type { soapSummaryWorkflow } from '../../workflows';
import { USED_ELSEWHERE, grantForgeries, issueTestGrant, refusalType, type Signature } from '../helpers/forgery';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { addNote, jobUrl, minutesAgo, patientWithNotes, readySummary, startSummaryRig, waitForStage, type SummaryRig } from './support';

type Handle = WorkflowHandle<typeof soapSummaryWorkflow>;
type Args = Record<string, unknown>;

/**
 * An attacker who can reach the Temporal frontend (with labflow's data converter) sends the summary run's review
 * Update and its supersession Signal straight to the run: with a null actor, no grant, a made-up one, another
 * user's, a used one, an expired one, one for other arguments or another run, one without the password check, and
 * a perfectly good grant of a clinician who is not on the patient's care team. Each is refused, nothing of it is
 * recorded, the attempt is a security event, IT operators hear of it once per run, and the same review then
 * succeeds through the API.
 */
describe('forged SOAP-summary actions sent straight to Temporal', () => {
  let rig: SummaryRig;
  let u: Record<'outsider' | 'colleague' | 'ivan', TestUser>;

  before(async () => {
    rig = await startSummaryRig();
    u = await makeUsers({ outsider: ['clinician'], colleague: ['clinician'], ivan: ['it_operator'] });
  });
  after(() => rig.stop());

  const db = () => testEnv().db;
  const handleOf = (workflowId: string): Handle => testEnv().client.workflow.getHandle(workflowId);

  const issue = (who: TestUser, workflowId: string, bound: unknown, signature?: Signature, action: GrantAction = 'soap.review') =>
    issueTestGrant(who, workflowId, action, bound, signature);

  /** Every kind of bad proof for one review: the actor and grant to send, and whether the validator or the activity refuses. */
  async function forgeries(workflowId: string, who: TestUser, args: Args, otherArgs: Args, signature?: Signature) {
    const bound = soapGrantedArgs.review(args as never);
    const cases: { name: string; actor: unknown; grant: unknown; byValidator?: boolean }[] = [
      { name: 'a null actor', actor: null, grant: await issue(who, workflowId, bound, signature), byValidator: true },
      { name: 'a malformed actor', actor: { userId: who.actor.userId }, grant: await issue(who, workflowId, bound, signature), byValidator: true },
      // A real grant, rightly written, of a clinician who is not on the patient's care team.
      { name: 'a clinician off the care team', actor: u.outsider.actor, grant: await issue(u.outsider, workflowId, bound, signature) },
    ];
    const common = await grantForgeries({
      workflowId,
      who,
      other: u.colleague,
      action: 'soap.review',
      bound,
      otherBound: soapGrantedArgs.review(otherArgs as never),
      signature,
      otherAction: { action: 'document.decide', bound },
    });
    for (const c of common) cases.push({ ...c, actor: who.actor });
    if (signature) {
      const otherHash = { ...signature, contentHash: 'f'.repeat(64) };
      cases.push({
        name: 'a grant for another content hash',
        actor: who.actor,
        grant: await issue(who, workflowId, soapGrantedArgs.review({ ...args, signature: otherHash } as never), otherHash),
      });
    }
    return cases;
  }

  /** What a forged action could have written: signatures, the run's audit trail but security events, the summary, grants consumed. */
  async function record(workflowId: string) {
    const [signatures, audit, summaries, grants] = await Promise.all([
      db()('signatures').where({ workflow_id: workflowId }).count('* as n').first(),
      db()('audit_events')
        .whereRaw(`details->>'workflowId' = ?`, [workflowId])
        .whereNot('action', 'security.grant_refused')
        .orderBy('seq')
        .pluck('action'),
      db()('summaries').where({ workflow_id: workflowId }).orderBy('round').select('status', 'reviewed_by', 'review_decision', 'edited_text'),
      db()('action_grants')
        .where({ workflow_id: workflowId })
        .whereNotNull('consumed_at')
        .whereNot('consumed_by', USED_ELSEWHERE)
        .count('* as n')
        .first(),
    ]);
    return { signatures: Number(signatures?.n), audit, summaries, consumedGrants: Number(grants?.n) };
  }

  const securityEvents = async (workflowId: string) =>
    db()('audit_events')
      .where({ action: 'security.grant_refused' })
      .whereRaw(`details->>'workflowId' = ?`, [workflowId])
      .orderBy('seq')
      .select('details');

  /** Sends each forgery of the review and proves it refused and unrecorded; answers how many reached the activity. */
  async function refuseAll(workflowId: string, who: TestUser, args: Args, otherArgs: Args, signature?: Signature): Promise<number> {
    const handle = handleOf(workflowId);
    const before = await record(workflowId);
    const stateBefore = await handle.query(summaryStateQuery);
    let byActivity = 0;
    for (const forgery of await forgeries(workflowId, who, args, otherArgs, signature)) {
      const type = await refusalType(
        handle.executeUpdate(reviewSummaryUpdate, { args: [{ ...args, actor: forgery.actor, grant: forgery.grant } as never] }),
      );
      assert.equal(type, FailureType.GrantRefused, `${String(args.decision)} with ${forgery.name}`);
      if (!forgery.byValidator) byActivity += 1;
      assert.deepEqual(await record(workflowId), before, `${String(args.decision)} with ${forgery.name} recorded something`);
    }
    assert.deepEqual(await handle.query(summaryStateQuery), stateBefore, 'the run still awaits review, as before');
    return byActivity;
  }

  /** The subject as written, unfolded: a job's ID makes it longer than one header line. */
  const subjectOf = (raw: string) => /^Subject:\s*(.+)$/im.exec(raw.replace(/\r?\n[ \t]+/g, ' '))?.[1] ?? '';
  const alertsFor = (workflowId: string) =>
    testEnv().mails.filter((m) => m.to.some((to) => to.includes(u.ivan.username)) && subjectOf(m.raw).includes(`summary job ${workflowId}`));

  it('refuses forged approvals, edits, rejections and a forged supersession; the API then records the approval', async () => {
    const patient = await patientWithNotes(rig);
    const { jobId, summary } = await readySummary(rig, patient.id);
    const signature = { meaning: 'approval', contentHash: summary.contentHash, signedAt: new Date().toISOString() };
    const approve = { decision: 'approve', summaryId: summary.id, signature };
    let refusals = await refuseAll(jobId, rig.doc, approve, { ...approve, decision: 'edit', editId: randomBytes(8).toString('hex') }, signature);

    // An edit names its stored text; the grant binds that text's ID and the hash the password check signed.
    const text = 'Hypertension, improving on lisinopril. Follow up in four weeks.';
    const editHash = (await import('node:crypto')).createHash('sha256').update(text).digest('hex');
    const stored = await storeReviewTexts(db(), rig.doc.actor, summary.id, { edit: { text, contentHash: editHash } });
    const editSignature = { meaning: 'approval', contentHash: editHash, signedAt: new Date().toISOString() };
    const edit = { decision: 'edit', summaryId: summary.id, signature: editSignature, editId: stored.editId };
    refusals += await refuseAll(jobId, rig.doc, edit, { ...edit, editId: summary.id }, editSignature);

    const comments = await storeReviewTexts(db(), rig.doc.actor, summary.id, { comment: 'Misses the allergy.' });
    const reject = { decision: 'reject', summaryId: summary.id, commentId: comments.commentId, regenerate: false };
    refusals += await refuseAll(jobId, rig.doc, reject, { ...reject, regenerate: true });

    // Postgres does not bear out this supersession (the notes are unchanged): the run ignores it and says so.
    await handleOf(jobId).signal(supersedeSummarySignal, { reason: 'notes_changed' });
    refusals += 1;
    await waitFor(async () => (await securityEvents(jobId)).length === refusals || null, 'the forged supersession to be refused');

    const events = await securityEvents(jobId);
    assert.equal(events.length, refusals, 'each refusal the recording step saw is a security event');
    assert.ok(events.every((e) => e.details.reason && e.details.attempted));
    assert.equal(events.at(-1).details.attempted, 'soap.supersede');
    assert.equal(events.at(-1).details.reason, 'not_superseded');
    const offTeam = events.filter((e) => e.details.claimedUserId === u.outsider.actor.userId);
    assert.equal(offTeam.length, 3, 'the off-team clinician is refused for each decision');
    assert.ok(offTeam.every((e) => e.details.reason === 'role_missing'));
    assert.equal((await handleOf(jobId).query(summaryStateQuery)).stage, 'ready');
    assert.equal((await db()('summary_jobs').where({ workflow_id: jobId }).first('stage')).stage, 'ready');
    assert.equal(alertsFor(jobId).length, 1, 'IT operators are alerted once for the run, however many forgeries');

    // The clinician off the care team is refused by the API too, before any grant is written.
    const outsider = await rig.p.api('POST', `${jobUrl(jobId)}/review`, {
      key: u.outsider.apiKey,
      body: { decision: 'approve', signature: { password: u.outsider.password, meaning: 'approval', contentHash: summary.contentHash } },
    });
    assert.equal(outsider.status, 403, JSON.stringify(outsider.body));

    // The same approval through the API, which writes the grant the run consumes.
    const approved = await rig.p.api('POST', `${jobUrl(jobId)}/review`, {
      key: rig.doc.apiKey,
      body: { decision: 'approve', signature: { password: rig.doc.password, meaning: 'approval', contentHash: summary.contentHash } },
    });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    assert.equal(approved.body.stage, 'approved');
    const [signed] = await db()('signatures').where({ workflow_id: jobId });
    assert.equal(signed.username, rig.doc.username);
    const audited = await db()('audit_events').where({ action: 'summary.approved' }).whereRaw(`details->>'workflowId' = ?`, [jobId]).first();
    assert.equal(audited.actor, rig.doc.username);
    const consumed = await db()('action_grants').where({ workflow_id: jobId, action: 'soap.review' }).whereNot('consumed_by', USED_ELSEWHERE).whereNotNull('consumed_at');
    assert.equal(consumed.length, 1, 'exactly the API grant was consumed');
    assert.equal(audited.details.grant, consumed[0].id);
    assert.equal(alertsFor(jobId).length, 1);
  });

  it('refuses a care-team clinician removed after the API wrote the grant, and records the reviewer Postgres knows', async () => {
    const patient = await patientWithNotes(rig);
    const added = await rig.p.api('POST', `/api/v1/patients/${patient.id}/clinicians`, {
      key: rig.doc.apiKey,
      body: { username: u.colleague.username },
    });
    assert.equal(added.status, 201, JSON.stringify(added.body));
    const { jobId, summary } = await readySummary(rig, patient.id);
    const signature = { meaning: 'approval', contentHash: summary.contentHash, signedAt: new Date().toISOString() };
    const args = { decision: 'approve', summaryId: summary.id, signature };
    const grant = await issue(u.colleague, jobId, soapGrantedArgs.review(args), signature);
    await db()('patient_clinicians').where({ patient_id: patient.id, user_id: u.colleague.actor.userId }).delete();
    const refused = await refusalType(handleOf(jobId).executeUpdate(reviewSummaryUpdate, { args: [{ ...args, actor: u.colleague.actor, grant } as never] }));
    assert.equal(refused, FailureType.GrantRefused);
    assert.equal((await db()('signatures').where({ workflow_id: jobId })).length, 0);
    assert.equal((await db()('action_grants').where({ id: grant }).first('consumed_at')).consumed_at, null, 'a refused grant is not spent');

    // Back on the team, the same grant records the reviewer as Postgres knows them, whatever name the request shows.
    await db()('patient_clinicians').insert({ patient_id: patient.id, user_id: u.colleague.actor.userId, added_by: rig.doc.actor.userId });
    const dressedUp = { ...u.colleague.actor, username: 'chief.physician', printedName: 'Dr. Forged Name' };
    const state = await handleOf(jobId).executeUpdate(reviewSummaryUpdate, { args: [{ ...args, actor: dressedUp, grant } as never] });
    assert.equal(state.stage, 'approved');
    assert.equal(state.reviews[0].by, u.colleague.username);
    const [row] = await db()('signatures').where({ workflow_id: jobId });
    assert.equal(row.printed_name, u.colleague.actor.printedName);
  });

  it('believes a supersession that Postgres bears out: a changed note supersedes the summary awaiting review', async () => {
    const patient = await patientWithNotes(rig);
    const { jobId } = await readySummary(rig, patient.id);
    await addNote(rig.p, rig.doc, patient.id, { subjective: 'New complaint.', noteTime: minutesAgo(5) });
    await waitForStage(rig, jobId, ['superseded']);
    assert.equal((await securityEvents(jobId)).length, 0, 'a true notice is no security event');
    const ended = await db()('audit_events').where({ action: 'summary.superseded' }).whereRaw(`details->>'workflowId' = ?`, [jobId]).first();
    assert.equal(ended.details.reason, 'notes_changed');
  });
});
