import assert from 'node:assert/strict';
import { EXTRACTIVE_LABEL } from '../../activities/llm/extractive';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import {
  addNote,
  attemptTrail,
  jobOf,
  jobUrl,
  minutesAgo,
  patientWithNotes,
  readySummary,
  requestSummary,
  sha256,
  startSummaryRig,
  waitForStage,
  type SummaryRig,
} from './support';

const sign = (user: TestUser, contentHash: string, password = user.password) => ({ password, meaning: 'approval', contentHash });

describe('a SOAP-note summary from request to signed review', () => {
  let rig: SummaryRig;
  let other: Record<'outsider' | 'tech' | 'admin', TestUser>;
  before(async () => {
    rig = await startSummaryRig();
    other = await makeUsers({ outsider: ['clinician'], tech: ['lab_technician'], admin: ['admin'] });
  });
  after(() => rig.stop());

  it('summarizes with the first provider, stores provenance, sends no identifiers, and is approved with a signature', async () => {
    const patient = await patientWithNotes(rig);
    const sent = rig.stubs.anthropic.count;
    const { jobId, job, summary } = await readySummary(rig, patient.id);

    assert.match(jobId, new RegExp(`^soap-summary:${patient.id}:[0-9a-f]{32}$`));
    assert.equal(job.provider, 'anthropic');
    assert.deepEqual(attemptTrail(job), ['anthropic:succeeded']);
    assert.equal(summary.aiGenerated, true);
    assert.match(summary.text, /Subjective/);
    assert.match(summary.text, /lisinopril/i);
    assert.equal(summary.provenance.provider, 'anthropic');
    assert.equal(summary.provenance.model, 'claude-sonnet-4-5');
    assert.equal(summary.provenance.promptVersion, 'soap-summary/1');
    assert.match(summary.provenance.promptHash, /^[0-9a-f]{64}$/);
    assert.equal(summary.provenance.notes.length, 2);
    assert.equal(summary.provenance.validation.ok, true);
    assert.equal(summary.contentHash, sha256(summary.text));

    // Minimum necessary: the provider saw the notes, never the MRN, phone, address or name.
    const bodies = rig.stubs.anthropic.requests.slice(sent).map((r) => r.rawBody);
    assert.equal(bodies.length, 1);
    for (const identifier of [patient.mrn!, '555 0142', '12 Elm Street', patient.familyName]) {
      assert.ok(!bodies[0].includes(identifier), `the prompt carried ${identifier}`);
    }
    assert.match(bodies[0], /lisinopril/);

    const approved = await rig.p.api('POST', `${jobUrl(jobId)}/review`, {
      key: rig.doc.apiKey,
      body: { decision: 'approve', signature: sign(rig.doc, summary.contentHash) },
    });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    assert.equal(approved.body.stage, 'approved');
    const after = await rig.p.api('GET', `${jobUrl(jobId)}/summary`, { key: rig.doc.apiKey });
    assert.equal(after.body.status, 'approved');
    assert.equal(after.body.review.by, rig.doc.username);
    assert.equal(after.body.signatures.length, 1);
    assert.equal(after.body.signatures[0].content_hash ?? after.body.signatures[0].contentHash, summary.contentHash);
    const handle = testEnv().client.workflow.getHandle(jobId);
    assert.equal((await handle.describe()).status.name, 'COMPLETED');
  });

  it('answers a repeated request for unchanged notes with the same job, and supersedes it when a note changes', async () => {
    const patient = await patientWithNotes(rig);
    const first = await requestSummary(rig, patient.id);
    assert.equal(first.status, 202);
    const again = await requestSummary(rig, patient.id);
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.jobId, first.body.jobId);
    assert.equal(again.body.created, false);
    await waitForStage(rig, first.body.jobId, ['ready']);

    await addNote(rig.p, rig.doc, patient.id, { subjective: 'New complaint: cough.', noteTime: minutesAgo(5) });
    const superseded = await waitForStage(rig, first.body.jobId, ['superseded']);
    assert.equal(superseded.summary.status, 'superseded');

    const fresh = await requestSummary(rig, patient.id);
    assert.equal(fresh.status, 202);
    assert.notEqual(fresh.body.jobId, first.body.jobId);
    // Done before the next test scripts the provider: nothing of this one calls it in the background.
    await waitForStage(rig, fresh.body.jobId, ['ready']);
  });

  it('supersedes a run that is still generating when a note changes, and the late answer is never stored', async () => {
    const patient = await patientWithNotes(rig);
    const calls = rig.stubs.anthropic.count;
    rig.stubs.anthropic.latencyMs = 1500;
    try {
      const res = await requestSummary(rig, patient.id, { providers: ['anthropic'] });
      // The provider has the request: the run is waiting for its answer.
      await waitFor(() => rig.stubs.anthropic.count > calls, 'the provider to be asked');
      await addNote(rig.p, rig.doc, patient.id, { plan: 'Add amlodipine 5 mg.', noteTime: minutesAgo(1) });
      const job = await waitForStage(rig, res.body.jobId, ['superseded']);
      assert.equal(job.summary, null);
      // The late answer arrives and its attempt is recorded; only then is there anything to have not stored.
      const late = await waitFor(
        () => testEnv().db('summary_attempts').where({ workflow_id: res.body.jobId, provider: 'anthropic' }).first('outcome'),
        'the late answer to be recorded as an attempt',
      );
      assert.equal(late.outcome, 'succeeded');
      assert.equal(await testEnv().db('summaries').where({ workflow_id: res.body.jobId }).first(), undefined);
    } finally {
      rig.stubs.anthropic.latencyMs = 0;
    }
  });

  it('records an edit signed over the edited text, and shows the edited text with the generated one kept', async () => {
    const patient = await patientWithNotes(rig);
    const { jobId, summary } = await readySummary(rig, patient.id);
    const text = `${summary.text}\n\nClinician note: confirmed penicillin allergy with the patient.`;
    const stale = await rig.p.api('POST', `${jobUrl(jobId)}/review`, {
      key: rig.doc.apiKey,
      body: { decision: 'edit', text, signature: sign(rig.doc, summary.contentHash) },
    });
    assert.equal(stale.status, 422, 'the signature must name the edited text');
    const edited = await rig.p.api('POST', `${jobUrl(jobId)}/review`, {
      key: rig.doc.apiKey,
      body: { decision: 'edit', text, signature: sign(rig.doc, sha256(text)) },
    });
    assert.equal(edited.status, 200, JSON.stringify(edited.body));
    assert.equal(edited.body.stage, 'edited');
    const view = (await rig.p.api('GET', `${jobUrl(jobId)}/summary`, { key: rig.doc.apiKey })).body;
    assert.equal(view.status, 'edited');
    assert.equal(view.text, text);
    assert.equal(view.generatedText, summary.text);
    assert.equal(view.contentHash, sha256(text));
    assert.equal(view.signatures[0].content_hash ?? view.signatures[0].contentHash, sha256(text));
  });

  it('makes a new round after a rejection, which is then approved', async () => {
    const patient = await patientWithNotes(rig);
    const { jobId } = await readySummary(rig, patient.id);
    const rejected = await rig.p.api('POST', `${jobUrl(jobId)}/review`, {
      key: rig.doc.apiKey,
      body: { decision: 'reject', comment: 'Misses the stress test result.' },
    });
    assert.equal(rejected.status, 200, JSON.stringify(rejected.body));
    const job = await waitForStage(rig, jobId, ['ready']);
    assert.equal(job.round, 2);
    const summary = (await rig.p.api('GET', `${jobUrl(jobId)}/summary`, { key: rig.doc.apiKey })).body;
    assert.equal(summary.round, 2);
    const approved = await rig.p.api('POST', `${jobUrl(jobId)}/review`, {
      key: rig.doc.apiKey,
      body: { decision: 'approve', signature: sign(rig.doc, summary.contentHash) },
    });
    assert.equal(approved.body.stage, 'approved');
    const rows = await testEnv().db('summaries').where({ workflow_id: jobId }).orderBy('round').pluck('status');
    assert.deepEqual(rows, ['rejected', 'approved']);
  });

  it('answers with the summary itself when asked to wait and it is ready in time', async () => {
    const patient = await patientWithNotes(rig);
    const res = await requestSummary(rig, patient.id, {}, '?wait=15s');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.stage, 'ready');
    assert.match(res.body.summary.text, /Assessment/);
  });

  it('falls back to the extractive summary, labelled as not AI-generated, when every provider is down', async () => {
    const patient = await patientWithNotes(rig);
    for (const stub of Object.values(rig.stubs)) stub.script('unauthorized');
    const { job, summary } = await readySummary(rig, patient.id);
    assert.equal(job.provider, 'extractive');
    assert.deepEqual(attemptTrail(job), ['anthropic:auth', 'openai:auth', 'ollama:auth', 'extractive:succeeded']);
    assert.equal(summary.aiGenerated, false);
    assert.ok(summary.text.startsWith(EXTRACTIVE_LABEL), summary.text.slice(0, 80));
    assert.match(summary.text, /penicillin/i);
  });

  it('refuses reviews that are not allowed, and changes nothing', async () => {
    const patient = await patientWithNotes(rig);
    const { jobId, summary } = await readySummary(rig, patient.id);
    const review = (key: string, body: unknown) => rig.p.api('POST', `${jobUrl(jobId)}/review`, { key, body });

    assert.equal(
      (await review(other.outsider.apiKey, { decision: 'approve', signature: sign(other.outsider, summary.contentHash) })).status,
      403,
    );
    assert.equal((await review(other.tech.apiKey, { decision: 'approve', signature: sign(other.tech, summary.contentHash) })).status, 403);
    assert.equal((await review(other.admin.apiKey, { decision: 'reject', comment: 'no' })).status, 403);
    assert.equal((await review(rig.doc.apiKey, { decision: 'approve', signature: sign(rig.doc, 'a'.repeat(64)) })).status, 409);
    assert.equal(
      (await review(rig.doc.apiKey, { decision: 'approve', signature: sign(rig.doc, summary.contentHash, 'wrong') })).status,
      403,
    );
    assert.equal((await review(rig.doc.apiKey, { decision: 'reject' })).status, 400);
    assert.equal((await review(rig.doc.apiKey, { decision: 'approve' })).status, 400);
    assert.equal((await review(rig.doc.apiKey, { decision: 'maybe' })).status, 400);
    assert.equal((await rig.p.api('GET', jobUrl(jobId), { key: other.outsider.apiKey })).status, 403);
    assert.equal((await rig.p.api('GET', `${jobUrl(jobId)}/summary`, { key: other.admin.apiKey })).status, 403);

    const job = await jobOf(rig, jobId);
    assert.equal(job.stage, 'ready');
    assert.equal(await testEnv().db('signatures').where({ entity_id: summary.id }).first(), undefined);
    assert.equal(await testEnv().db('summary_edits').where({ summary_id: summary.id }).first(), undefined);
  });

  it('refuses requests it cannot carry out with a clear 4xx, and starts nothing', async () => {
    const patient = await patientWithNotes(rig);
    const bare = (
      await rig.p.api('POST', '/api/v1/patients', {
        key: rig.doc.apiKey,
        body: { givenName: 'No', familyName: 'Notes', dateOfBirth: '1990-01-01' },
      })
    ).body;
    const jobs = async () => Number((await testEnv().db('summary_jobs').count('* as n').first())?.n);
    const before = await jobs();

    const noNotes = await requestSummary(rig, bare.id);
    assert.equal(noNotes.status, 422);
    assert.equal(noNotes.body.type, 'urn:labflow:problem:no-notes');
    const unknownProvider = await requestSummary(rig, patient.id, { providers: ['gemini'] });
    assert.equal(unknownProvider.status, 400);
    const twice = await requestSummary(rig, patient.id, { providers: ['openai', 'openai'] });
    assert.equal(twice.status, 400);
    const unknownField = await requestSummary(rig, patient.id, { model: 'gpt-5' });
    assert.equal(unknownField.status, 400);
    const badWait = await requestSummary(rig, patient.id, {}, '?wait=soon');
    assert.equal(badWait.status, 400);
    const unknownPatient = await requestSummary(rig, '00000000-0000-4000-8000-000000000000');
    assert.equal(unknownPatient.status, 404);
    const notClinician = await rig.p.api('POST', `/api/v1/patients/${patient.id}/summaries`, { key: other.tech.apiKey, body: {} });
    assert.equal(notClinician.status, 403);
    const unknownJob = await rig.p.api('GET', jobUrl(`soap-summary:${patient.id}:${'0'.repeat(32)}`), { key: rig.doc.apiKey });
    assert.equal(unknownJob.status, 404);
    const badJob = await rig.p.api('GET', jobUrl('capa:CAPA-2026-0001'), { key: rig.doc.apiKey });
    assert.equal(badJob.status, 400);
    assert.equal(await jobs(), before);
  });
});
