import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import pino from 'pino';
import { REDACTED_PATHS } from '../../platform/logger';
import { startDevTemporal, type DevTemporal } from '../../scripts/lib/dev-temporal';
import { decodePayloadsIn } from '../../workers/replay';
import type { ApiResponse } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { captureRuntimeLogs } from '../setup/root-hooks';
import { notesUrl, patientUrl, PATIENTS } from '../patients/support';
import {
  attemptTrail,
  jobUrl,
  minutesAgo,
  readySummary,
  requestSummary,
  sha256,
  startSummaryRig,
  waitForStage,
  type SummaryRig,
} from './support';

/** Letters only, so it is a valid name or MRN, and unique enough that finding it anywhere means it leaked. */
const letters = (n: number) => [...randomBytes(n)].map((b) => String.fromCharCode(97 + (b % 26))).join('');
const digits = (n: number) => Array.from({ length: n }, () => randomInt(10)).join('');

const SECTIONS = ['subjective', 'objective', 'assessment', 'plan'] as const;

/** Every string, key and byte field of a value (bytes read as Latin-1: canaries are ASCII), as one searchable text. */
function everythingIn(value: unknown): string {
  const parts: string[] = [];
  const seen = new WeakSet<object>();
  const walk = (v: unknown): void => {
    if (typeof v === 'string') parts.push(v);
    else if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') parts.push(String(v));
    else if (ArrayBuffer.isView(v)) parts.push(Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('latin1'));
    else if (v && typeof v === 'object' && !seen.has(v)) {
      seen.add(v);
      const entries = v instanceof Map ? [...v.entries()] : Object.entries(v);
      for (const [key, child] of entries) {
        walk(key);
        walk(child);
      }
    }
  };
  walk(value);
  return parts.join('\n');
}

function memoryStream(lines: string[]): Writable {
  return new Writable({
    write(chunk, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
}

/**
 * Keeping PHI out of Temporal: unique canaries in every identifier and every note section, summaries
 * through every path a run can take, and then none of them in the Temporal server's database files, in any history
 * (raw or decoded with the keys), in descriptions, search attributes or memos, nor in any log.
 */
describe('no patient data reaches Temporal or the logs, on any summary path', function () {
  this.timeout(180_000);

  /** Canary → where it was put. */
  const canaries = new Map<string, string>();
  /** Canaries that must be in PostgreSQL afterwards (proof the test did not pass by never storing them). */
  const stored = new Set<string>();
  /** Canaries the LLM stubs must have been sent (the note sections: the minimum a summary needs). */
  const prompted = new Set<string>();
  const canary = (where: string, keep = true) => {
    const value = `Canary${letters(12)}`;
    canaries.set(value, where);
    if (keep) stored.add(value);
    return value;
  };

  let dir = '';
  const serverLog: string[] = [];
  const apiLog: string[] = [];
  const runtimeLog: string[] = [];
  const errorAnswers: { what: string; res: ApiResponse }[] = [];
  const jobs: Record<string, string> = {};

  let server: DevTemporal | undefined;
  let connection: Connection | undefined;
  let nativeConnection: NativeConnection | undefined;
  let stopCapture: (() => void) | undefined;
  let rig: SummaryRig | undefined;
  let strict: SummaryRig | undefined;

  // Read while the server was up, checked afterwards.
  let executions: { workflowId: string; runId: string; status: string }[] = [];
  const rawTexts: string[] = [];
  const decodedTexts: string[] = [];
  let databaseFiles: { name: string; bytes: Buffer }[] = [];
  let postgresText = '';
  let promptText = '';

  async function shutDown() {
    stopCapture?.();
    stopCapture = undefined;
    await rig?.stop();
    await strict?.stop();
    rig = strict = undefined;
    await nativeConnection?.close();
    await connection?.close();
    nativeConnection = connection = undefined;
    await server?.stop();
    server = undefined;
  }

  /** A patient whose name, MRN, phone, address and two notes' sections are all canaries. */
  async function canaryPatient(r: SummaryRig, path: string) {
    const phoneDigits = `1${digits(10)}`;
    const phone = `+1 ${phoneDigits.slice(1, 4)} ${phoneDigits.slice(4, 7)} ${phoneDigits.slice(7)}`;
    canaries.set(phone, `${path}: phone`);
    canaries.set(phoneDigits, `${path}: phone (digits)`);
    stored.add(phone);
    const street = canary(`${path}: address`);
    const created = await r.p.api('POST', PATIENTS, {
      key: r.doc.apiKey,
      body: {
        givenName: canary(`${path}: given name`),
        familyName: canary(`${path}: family name`),
        dateOfBirth: '1961-03-09',
        mrn: canary(`${path}: MRN`),
        phone,
        address: `12 ${street} Road, Springfield`,
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const texts = [
      {
        subjective: 'Chest tightness on exertion for a week. Allergies: penicillin.',
        objective: 'BP 148/92, HR 88. ECG sinus rhythm.',
        assessment: 'Hypertension, poorly controlled. Stable angina.',
        plan: 'Start lisinopril 10 mg daily. Continue aspirin 81 mg. Stress test in 2 weeks.',
      },
      {
        subjective: 'Follow-up; tightness less frequent.',
        objective: 'BP 136/84.',
        assessment: 'Hypertension improving.',
        plan: 'Continue lisinopril 10 mg. Recheck in 4 weeks.',
      },
    ];
    const sections: string[] = [];
    for (const [i, note] of texts.entries()) {
      const body: Record<string, string> = { noteTime: minutesAgo(120 - i * 60) };
      for (const s of SECTIONS) {
        const c = canary(`${path}: note ${i + 1} ${s}`);
        sections.push(c);
        body[s] = `${note[s]} ${c}.`;
      }
      const res = await r.p.api('POST', notesUrl(created.body.id), { key: r.doc.apiKey, body });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
    return { id: created.body.id as string, sections };
  }

  /** A patient summarized as far as review; their note sections must have reached a provider. */
  async function summarized(r: SummaryRig, path: string, body: Record<string, unknown> = {}) {
    const patient = await canaryPatient(r, path);
    patient.sections.forEach((c) => prompted.add(c));
    const ready = await readySummary(r, patient.id, body);
    jobs[path] = ready.jobId;
    return { patient, ...ready };
  }

  /** The comments the runs recorded with their reviews, by round. */
  const reviewComments = (jobId: string) =>
    testEnv().db('summaries').where({ workflow_id: jobId }).orderBy('round').pluck('review_comment') as Promise<(string | null)[]>;
  const sign = (user: TestUser, contentHash: string) => ({ password: user.password, meaning: 'approval', contentHash });
  const review = (r: SummaryRig, jobId: string, body: Record<string, unknown>) =>
    r.p.api('POST', `${jobUrl(jobId)}/review`, { key: r.doc.apiKey, body });

  before(async function () {
    this.timeout(180_000);
    dir = mkdtempSync(join(tmpdir(), 'labflow-phi-canary-'));
    const dbFilename = join(dir, 'temporal.sqlite');
    server = await startDevTemporal({ dbFilename, logLevel: 'info', onOutput: (line) => serverLog.push(line) });
    connection = await Connection.connect({ address: server.address });
    nativeConnection = await NativeConnection.connect({ address: server.address });
    const client = new Client({ connection, dataConverter: testEnv().dataConverter });
    const raw = new Client({ connection });
    stopCapture = captureRuntimeLogs((line) => runtimeLog.push(line));
    const log = pino({ level: 'trace', redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, memoryStream(apiLog));
    const platform = { log, temporal: { client, nativeConnection } };
    rig = await startSummaryRig({ platform });
    strict = await startSummaryRig({ platform, summary: { extractiveFallback: false } });
    await makeUsers({ operator: ['it_operator'] });
    const main = rig;

    // Approved, with a comment.
    {
      const { jobId, summary } = await summarized(main, 'approve');
      const comment = canary('approve: comment');
      const res = await review(main, jobId, { decision: 'approve', signature: sign(main.doc, summary.contentHash), comment });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.stage, 'approved');
      assert.deepEqual(await reviewComments(jobId), [comment]);
    }
    // Edited: the signed text carries a canary of its own.
    {
      const { jobId, summary } = await summarized(main, 'edit');
      const text = `${summary.text}\n\nClinician note: ${canary('edit: edited text')}.`;
      const res = await review(main, jobId, { decision: 'edit', text, signature: sign(main.doc, sha256(text)) });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.stage, 'edited');
    }
    // Rejected with a comment, regenerated, then approved.
    {
      const { jobId } = await summarized(main, 'reject');
      const comment = `Misses the stress test. ${canary('reject: comment')}`;
      const rejected = await review(main, jobId, { decision: 'reject', comment });
      assert.equal(rejected.status, 200, JSON.stringify(rejected.body));
      const job = await waitForStage(main, jobId, ['ready']);
      assert.equal(job.round, 2);
      const summary = (await main.p.api('GET', `${jobUrl(jobId)}/summary`, { key: main.doc.apiKey })).body;
      assert.equal((await review(main, jobId, { decision: 'approve', signature: sign(main.doc, summary.contentHash) })).status, 200);
      assert.deepEqual(await reviewComments(jobId), [comment, null]);
    }
    // The rows of the error table.
    const trails: Record<string, string[]> = {};
    main.stubs.anthropic.script({ kind: 'rate_limited', retryAfter: 1 });
    trails.rateLimited = attemptTrail((await summarized(main, '429')).job);
    main.stubs.anthropic.script('hang');
    trails.hang = attemptTrail((await summarized(main, 'hang')).job);
    main.stubs.anthropic.script('refusal');
    trails.refusal = attemptTrail((await summarized(main, 'refusal')).job);
    main.stubs.anthropic.script('truncated', 'truncated');
    trails.truncated = attemptTrail((await summarized(main, 'truncated')).job);
    main.stubs.anthropic.script('invalid_json');
    trails.invalidJson = attemptTrail((await summarized(main, 'invalid json')).job);
    main.stubs.anthropic.script('quota_exhausted');
    trails.quota = attemptTrail((await summarized(main, 'quota')).job);
    for (const stub of Object.values(main.stubs)) stub.script('unauthorized');
    trails.allDown = attemptTrail((await summarized(main, 'all down')).job);
    {
      // A candidate that quotes the notes but misses sections: validation refuses it.
      const patient = await canaryPatient(main, 'validation');
      patient.sections.forEach((c) => prompted.add(c));
      main.stubs.anthropic.script({ kind: 'healthy', text: `## Subjective\n${patient.sections[0]}\n## Plan\n${patient.sections[3]}` });
      const ready = await readySummary(main, patient.id);
      jobs.validation = ready.jobId;
      trails.validation = attemptTrail(ready.job);
    }
    assert.deepEqual(trails, {
      rateLimited: ['anthropic:rate_limited', 'anthropic:succeeded'],
      hang: ['anthropic:timeout', 'anthropic:succeeded'],
      refusal: ['anthropic:refusal', 'openai:succeeded'],
      truncated: ['anthropic:truncated', 'anthropic:truncated', 'openai:succeeded'],
      invalidJson: ['anthropic:invalid_response', 'anthropic:succeeded'],
      quota: ['anthropic:quota_exhausted', 'openai:succeeded'],
      allDown: ['anthropic:auth', 'openai:auth', 'ollama:auth', 'extractive:succeeded'],
      validation: ['anthropic:validation_failed', 'openai:succeeded'],
    });

    // A note added while the run is generating supersedes it.
    {
      const patient = await canaryPatient(main, 'superseded');
      main.stubs.anthropic.script({ kind: 'healthy', latencyMs: 1500 });
      const res = await requestSummary(main, patient.id, { providers: ['anthropic'] });
      jobs.superseded = res.body.jobId;
      await waitForStage(main, res.body.jobId, ['generating']);
      const note: Record<string, string> = { noteTime: minutesAgo(1) };
      for (const s of SECTIONS) note[s] = `New finding ${canary(`superseded: new note ${s}`)}.`;
      assert.equal((await main.p.api('POST', notesUrl(patient.id), { key: main.doc.apiKey, body: note })).status, 201);
      await waitForStage(main, res.body.jobId, ['superseded']);
    }
    // The patient is deleted while a provider is answering: the run is terminated, and the late answer has nowhere
    // to go.
    {
      const patient = await canaryPatient(main, 'deleted');
      for (const c of canaries.keys()) if (canaries.get(c)!.startsWith('deleted:')) stored.delete(c);
      main.stubs.anthropic.script({ kind: 'healthy', latencyMs: 1500 });
      const asked = main.stubs.anthropic.count;
      const res = await requestSummary(main, patient.id, { providers: ['anthropic'] });
      jobs.deleted = res.body.jobId;
      await waitFor(() => main.stubs.anthropic.count > asked, 'the provider to be asked');
      assert.equal((await main.p.api('DELETE', patientUrl(patient.id), { key: main.doc.apiKey })).status, 204);
      await waitFor(async () => (await client.workflow.getHandle(res.body.jobId).describe()).status.name === 'TERMINATED', 'termination');
      await new Promise((r) => setTimeout(r, 2500));
    }
    // Every provider down and no extractive fallback: the run fails.
    {
      for (const stub of Object.values(strict.stubs)) stub.setDefault('unauthorized');
      const patient = await canaryPatient(strict, 'failed');
      const res = await requestSummary(strict, patient.id);
      jobs.failed = res.body.jobId;
      const job = await waitForStage(strict, res.body.jobId, ['failed_all_providers']);
      assert.deepEqual(attemptTrail(job), ['anthropic:auth', 'openai:auth', 'ollama:auth']);
      await waitFor(async () => (await client.workflow.getHandle(res.body.jobId).describe()).status.name === 'FAILED', 'the run to fail');
    }
    // Refused requests: their answers must not echo what was sent.
    {
      const patient = await canaryPatient(main, 'refused');
      const key = main.doc.apiKey;
      const bad = (what: string, res: ApiResponse) => errorAnswers.push({ what, res });
      bad(
        'malformed JSON',
        await main.p.api('POST', notesUrl(patient.id), {
          key,
          raw: `{"subjective": "${canary('malformed JSON', false)}", "noteTime": "${minutesAgo(1)}",`,
        }),
      );
      bad(
        'unknown field',
        await main.p.api('POST', notesUrl(patient.id), {
          key,
          body: { subjective: 'Cough.', noteTime: minutesAgo(1), diagnosis: canary('unknown field value', false) },
        }),
      );
      bad(
        'invalid note time',
        await main.p.api('POST', notesUrl(patient.id), { key, body: { subjective: 'Cough.', noteTime: canary('note time', false) } }),
      );
      bad(
        'text before a heading',
        await main.p.api('POST', notesUrl(patient.id), {
          key,
          body: { text: `${canary('text before a heading', false)} then S: cough`, noteTime: minutesAgo(1) },
        }),
      );
      bad(
        'invalid name',
        await main.p.api('POST', PATIENTS, {
          key,
          body: { givenName: `${canary('invalid name', false)}, 42`, familyName: 'Doe', dateOfBirth: '1970-01-01' },
        }),
      );
      bad('unknown summary option', await requestSummary(main, patient.id, { model: canary('summary option', false) }));
      bad(
        'invalid review',
        await review(main, jobs.validation, {
          decision: 'maybe',
          text: canary('review text', false),
          comment: canary('review comment', false),
        }),
      );
      bad(
        'rejection without a comment',
        await review(main, jobs.validation, { decision: 'reject', comment: ' ', regenerate: canary('regenerate', false) }),
      );
    }

    // Everything the server holds about the runs, read through its API.
    executions = await waitFor(
      async () => {
        const found: { workflowId: string; runId: string; status: string }[] = [];
        for await (const info of client.workflow.list()) {
          found.push({ workflowId: info.workflowId, runId: info.runId, status: info.status.name });
          decodedTexts.push(everythingIn(info));
        }
        return Object.values(jobs).every((id) => found.some((e) => e.workflowId === id)) ? found : undefined;
      },
      'every run to be listed',
      15_000,
      250,
    );
    const codecs = testEnv().dataConverter.payloadCodecs ?? [];
    for (const { workflowId, runId } of executions) {
      const history = await raw.workflow.getHandle(workflowId, runId).fetchHistory();
      rawTexts.push(everythingIn(history));
      await decodePayloadsIn(history, codecs);
      decodedTexts.push(everythingIn(history));
      const described = await client.workflow.getHandle(workflowId, runId).describe();
      await decodePayloadsIn(described.raw, codecs);
      decodedTexts.push(everythingIn(described));
    }

    const { db } = testEnv();
    const tables = await Promise.all(
      ['patients', 'soap_notes', 'summaries', 'summary_attempts', 'summary_edits', 'summary_review_comments'].map((t) => db(t).select()),
    );
    postgresText = JSON.stringify(tables);
    promptText = [rig, strict]
      .flatMap((r) => Object.values(r.stubs))
      .flatMap((stub) => stub.requests.map((req) => req.rawBody))
      .join('\n');

    // The server's files are complete once it has stopped.
    await shutDown();
    databaseFiles = readdirSync(dir).map((name) => ({ name, bytes: readFileSync(join(dir, name)) }));
  });

  after(async function () {
    this.timeout(60_000);
    await shutDown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const leaksIn = (text: string | Buffer) => [...canaries].filter(([c]) => text.indexOf(c) >= 0).map(([c, where]) => `${where} (${c})`);

  it('stored the canaries in PostgreSQL and sent the note sections to the providers, so the checks below mean something', () => {
    const missing = [...stored].filter((c) => !postgresText.includes(c)).map((c) => canaries.get(c));
    assert.deepEqual(missing, [], 'canaries not found in PostgreSQL');
    const unsent = [...prompted].filter((c) => !promptText.includes(c)).map((c) => canaries.get(c));
    assert.deepEqual(unsent, [], 'note sections that reached no provider');
    assert.ok(stored.size > 150, `${stored.size} canaries stored`);
  });

  it('ran summaries that completed, failed and were terminated, and read all of them back', () => {
    const statuses = new Set(executions.map((e) => e.status));
    for (const status of ['COMPLETED', 'FAILED', 'TERMINATED']) assert.ok(statuses.has(status), `no ${status} run among ${[...statuses]}`);
    assert.ok(executions.length >= Object.keys(jobs).length, `${executions.length} runs`);
    assert.equal(rawTexts.length, executions.length);
  });

  it("leaves no canary in the Temporal server's database files", () => {
    assert.ok(
      databaseFiles.some((f) => f.name === 'temporal.sqlite' && f.bytes.length > 0),
      `files: ${databaseFiles.map((f) => f.name)}`,
    );
    for (const file of databaseFiles) {
      const workflowIds = Object.values(jobs).filter((id) => file.bytes.indexOf(id) >= 0);
      if (file.name === 'temporal.sqlite') assert.ok(workflowIds.length > 0, 'the database holds the runs');
      assert.deepEqual(leaksIn(file.bytes), [], `canaries in ${file.name}`);
    }
  });

  it('leaves no canary in any history, description, search attribute or memo, raw or decoded with the keys', () => {
    assert.deepEqual(leaksIn(rawTexts.join('\n')), [], 'canaries in histories as stored');
    const decoded = decodedTexts.join('\n');
    assert.match(decoded, /"patientId"/, 'the decoded histories hold the runs’ inputs in clear');
    assert.deepEqual(leaksIn(decoded), [], 'canaries in decoded histories or descriptions');
  });

  it('logs no canary: API requests, worker and activities, and the Temporal server', () => {
    const api = apiLog.join('');
    const runtime = runtimeLog.join('');
    assert.match(api, /"path":"\/api\/v1\/patients/, 'API requests were logged');
    assert.match(runtime, /summarizer attempt failed/, 'activity logs were captured');
    assert.ok(serverLog.length > 0, 'the server logged');
    assert.deepEqual(leaksIn(api), [], 'canaries in API logs');
    assert.deepEqual(leaksIn(runtime), [], 'canaries in worker and activity logs');
    assert.deepEqual(leaksIn(serverLog.join('\n')), [], 'canaries in the server output');
  });

  it('refuses bad requests without echoing what was sent', () => {
    assert.deepEqual(
      errorAnswers.map(({ what, res }) => [what, res.status]),
      [
        ['malformed JSON', 400],
        ['unknown field', 400],
        ['invalid note time', 400],
        ['text before a heading', 400],
        ['invalid name', 400],
        ['unknown summary option', 400],
        ['invalid review', 400],
        ['rejection without a comment', 400],
      ],
    );
    for (const { what, res } of errorAnswers) {
      assert.match(String(res.headers.get('content-type')), /problem\+json/, what);
      assert.deepEqual(leaksIn(JSON.stringify(res.body)), [], `${what}: ${JSON.stringify(res.body)}`);
    }
  });
});
