/**
 * Drives real SOAP-summary runs against the LLM provider stubs on the test server and saves their histories as
 * replay fixtures in test/fixtures/histories/soap-summary/. Run with `npx mocha
 * test/soap-summary/capture-histories.ts` after a deliberate change to what a run records; commit the new files.
 * fetchFixture stores payloads decoded, so the fixtures replay under any key set; each one is checked here to hold
 * no encrypted payload and nothing of the patient's record.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { reviewSummaryUpdate, supersedeSummarySignal } from '../../common/soap-summary';
import { encryptionKeyIdsIn, fetchFixture, loadFixture, saveFixture } from '../../workers/replay';
import { historiesDir } from '../helpers/replay-suite';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import {
  addNote,
  attemptTrail,
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

const dir = historiesDir('soap-summary');

/** Words of the notes patientWithNotes writes, and the identifiers it gives the patient. */
const RECORD_TERMS = ['lisinopril', 'penicillin', 'aspirin', 'angina', 'tightness', 'Elm Street', '555 0142'];

const closed = (workflowId: string, status: 'COMPLETED' | 'FAILED') =>
  waitFor(
    async () => (await testEnv().client.workflow.getHandle(workflowId).describe()).status.name === status,
    `${workflowId} ${status.toLowerCase()}`,
  );

/** Saves the run's decoded history, then proves the file holds no ciphertext and nothing of the patient's record. */
async function save(
  name: string,
  workflowId: string,
  patient: { familyName: string; mrn: string | null },
  freeText: string[] = [],
): Promise<void> {
  const file = join(dir, `${name}.json`);
  await saveFixture(file, await fetchFixture(testEnv().client, workflowId));
  const saved = await loadFixture(file);
  assert.deepEqual(encryptionKeyIdsIn(saved.history), [], `${name}: every payload is stored decoded`);
  const text = payloadTexts(saved.history).join('\n') + readFileSync(file, 'utf8');
  for (const term of [...RECORD_TERMS, patient.familyName, ...(patient.mrn ? [patient.mrn] : []), ...freeText]) {
    assert.ok(!text.toLowerCase().includes(term.toLowerCase()), `${name} carries "${term}"`);
  }
}

/** Every payload's data in a history, as text. */
function payloadTexts(value: unknown, found: string[] = []): string[] {
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return found;
  const v = value as { metadata?: unknown; data?: unknown };
  if (typeof v.metadata === 'object' && ArrayBuffer.isView(v.data)) {
    found.push(Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength).toString('utf8'));
  }
  for (const child of Object.values(value)) payloadTexts(child, found);
  return found;
}

describe('capturing SOAP-summary replay fixtures from real runs', () => {
  before(() => mkdirSync(dir, { recursive: true }));

  describe('with the extractive summary as the last resort', () => {
    let rig: SummaryRig;
    before(async () => {
      rig = await startSummaryRig();
    });
    after(() => rig.stop());

    const review = async (jobId: string, body: Record<string, unknown>) => {
      const res = await rig.p.api('POST', `${jobUrl(jobId)}/review`, { key: rig.doc.apiKey, body });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body;
    };
    const signed = (contentHash: string) => ({ password: rig.doc.password, meaning: 'approval', contentHash });

    it('captures a summary by the first provider, approved with a signature', async () => {
      const patient = await patientWithNotes(rig);
      const { jobId, job, summary } = await readySummary(rig, patient.id);
      assert.deepEqual(attemptTrail(job), ['anthropic:succeeded']);
      await review(jobId, { decision: 'approve', signature: signed(summary.contentHash) });
      await closed(jobId, 'COMPLETED');
      await save('approved-first-provider', jobId, patient);
    });

    it('captures retries, a failed validation and a widened budget across providers, then a signed edit', async () => {
      const patient = await patientWithNotes(rig);
      rig.stubs.anthropic.script('overloaded', 'overloaded');
      rig.stubs.openai.script({ kind: 'healthy', text: 'Stable.' });
      rig.stubs.ollama.script('truncated', { kind: 'rate_limited', retryAfter: 1 });
      const { jobId, job, summary } = await readySummary(rig, patient.id);
      assert.deepEqual(attemptTrail(job), [
        'anthropic:overloaded',
        'anthropic:overloaded',
        'openai:validation_failed',
        'ollama:truncated',
        'ollama:rate_limited',
        'ollama:succeeded',
      ]);
      const addition = 'Reviewed with the patient on the phone.';
      const text = `${summary.text}\n\n${addition}`;
      await review(jobId, { decision: 'edit', text, signature: signed(sha256(text)) });
      await closed(jobId, 'COMPLETED');
      await save('fallback-retries-edited', jobId, patient, [addition]);
    });

    it('captures a rejection, the regenerated summary and its approval', async () => {
      const patient = await patientWithNotes(rig);
      const { jobId } = await readySummary(rig, patient.id);
      const comment = 'Regenerate: the follow-up visit is missing.';
      await review(jobId, { decision: 'reject', comment });
      const job = await waitForStage(rig, jobId, ['ready']);
      assert.equal(job.round, 2);
      const summary = (await rig.p.api('GET', `${jobUrl(jobId)}/summary`, { key: rig.doc.apiKey })).body;
      await review(jobId, { decision: 'approve', signature: signed(summary.contentHash) });
      await closed(jobId, 'COMPLETED');
      await save('rejected-regenerated-approved', jobId, patient, [comment]);
    });

    it('captures a run superseded by a note change while a provider was answering', async () => {
      const patient = await patientWithNotes(rig);
      rig.stubs.anthropic.script({ kind: 'healthy', latencyMs: 1500 });
      const res = await requestSummary(rig, patient.id, { providers: ['anthropic'] });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      await waitForStage(rig, res.body.jobId, ['generating']);
      await addNote(rig.p, rig.doc, patient.id, { plan: 'Add amlodipine 5 mg.', noteTime: minutesAgo(1) });
      await waitForStage(rig, res.body.jobId, ['superseded']);
      await closed(res.body.jobId, 'COMPLETED');
      await save('superseded-while-generating', res.body.jobId, patient);
    });

    it('captures a summary awaiting review superseded by a note change', async () => {
      const patient = await patientWithNotes(rig);
      const { jobId } = await readySummary(rig, patient.id);
      await addNote(rig.p, rig.doc, patient.id, { subjective: 'New complaint: cough.', noteTime: minutesAgo(5) });
      await waitForStage(rig, jobId, ['superseded']);
      await closed(jobId, 'COMPLETED');
      await save('superseded-while-ready', jobId, patient);
    });
  });

  // Runs with proof: a review's grant consumed by the recording step, a forged review refused on the way, and a
  // supersession notice checked against Postgres (the soap-supersession-proof patch marker).
  describe('with proof of every action', () => {
    let rig: SummaryRig;
    before(async () => {
      rig = await startSummaryRig();
    });
    after(() => rig.stop());

    it('captures with proof: a forged review refused, a forged notice ignored, then a signed approval', async () => {
      const patient = await patientWithNotes(rig);
      const { jobId, summary } = await readySummary(rig, patient.id);
      const handle = testEnv().client.workflow.getHandle(jobId);
      const forged = { actor: rig.doc.actor, grant: randomBytes(32).toString('base64url'), decision: 'approve', summaryId: summary.id };
      const signature = { meaning: 'approval', contentHash: summary.contentHash, signedAt: new Date().toISOString() };
      await assert.rejects(handle.executeUpdate(reviewSummaryUpdate, { args: [{ ...forged, signature } as never] }));
      await handle.signal(supersedeSummarySignal, { reason: 'notes_changed' });
      await waitFor(
        async () => (await testEnv().db('audit_events').where({ action: 'security.grant_refused' }).whereRaw(`details->>'workflowId' = ?`, [jobId])).length === 2 || null,
        'both forgeries refused',
      );
      const res = await rig.p.api('POST', `${jobUrl(jobId)}/review`, {
        key: rig.doc.apiKey,
        body: { decision: 'approve', signature: { password: rig.doc.password, meaning: 'approval', contentHash: summary.contentHash } },
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      await closed(jobId, 'COMPLETED');
      await save('proof-forgeries-refused-approved', jobId, patient);
    });

    it('captures with proof: a summary awaiting review superseded by a note change Postgres bears out', async () => {
      const patient = await patientWithNotes(rig);
      const { jobId } = await readySummary(rig, patient.id);
      await addNote(rig.p, rig.doc, patient.id, { subjective: 'New complaint: cough.', noteTime: minutesAgo(5) });
      await waitForStage(rig, jobId, ['superseded']);
      await closed(jobId, 'COMPLETED');
      await save('proof-superseded-while-ready', jobId, patient);
    });
  });

  describe('without the extractive fallback', () => {
    let rig: SummaryRig;
    before(async () => {
      rig = await startSummaryRig({ summary: { extractiveFallback: false } });
    });
    after(() => rig.stop());

    it('captures a run in which every provider failed', async () => {
      const patient = await patientWithNotes(rig);
      for (const stub of Object.values(rig.stubs)) stub.script('unauthorized');
      const res = await requestSummary(rig, patient.id);
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const job = await waitForStage(rig, res.body.jobId, ['failed_all_providers']);
      assert.deepEqual(attemptTrail(job), ['anthropic:auth', 'openai:auth', 'ollama:auth']);
      await closed(res.body.jobId, 'FAILED');
      await save('failed-all-providers', res.body.jobId, patient);
    });
  });
});
