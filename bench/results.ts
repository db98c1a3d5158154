/**
 * bench:results — BENCH_RESULTS (default 1000) instrument results, each for its own routed TSH sample, from the
 * instrument's message to a released report. Two paths in the same run, on the same dev server, worker process and
 * Client, BENCH_LANES (default 8) at a time:
 *  - api: the signed webhook (`result.reported`: entered, submitted by the instrument path, judged by the test's
 *    signed rule set, verified by it, the report run started), then GET …/reports/v1 until it is assembled and
 *    POST …/reports/v1/release with the lab director's password and the content hash;
 *  - raw: the same runs driven with the Temporal client alone: the entry row and its grant written as the API
 *    writes them, executeUpdate(enterResult) on the analysis run, the report row polled in Postgres, a release grant
 *    and executeUpdate(releaseReport) on the report run (no HTTP, no password check, no reads as PHI access events).
 * The samples (accepted by a batch, routed through the API) and the rule set are set up untimed. Figures: results
 * per second on each path (ratio api / raw, higher is better), and the p50 / p99 from the instrument's message to
 * the released report on each path. Ends with one JSON line.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { contentHashOf } from '../common/capa-hash';
import { boundReportReleaseArgs, releaseReportUpdate, REPORT_RELEASE, reportStateQuery } from '../common/reports';
import { boundAnalysisArgs, enterResultUpdate } from '../common/results';
import { createUser, toActor } from '../db/identity';
import { grantAction } from '../api/signing';
import { webhookSignature } from '../api/routes/sample-intake-webhooks';
import { writeEntry } from '../api/services/results';
import type { Actor } from '../common/roles';
import { benchRun, UNTRIPPED_LIMITS } from './lib/bench-run';
import { startBenchPlatform, type BenchPlatform } from './lib/bench-platform';
import { median, percentile } from './lib/stats';

const { say, intSetting, checkInterrupted, run } = benchRun('results');
const N = intSetting('BENCH_RESULTS', 1000);
const LANES = intSetting('BENCH_LANES', 8);
const TARGET = 0.5;
const TEST = 'TSH';
const RULES = {
  allowedFlags: ['normal'],
  limits: { low: 0.4, high: 4 },
  delta: 'ignore',
  blockedInstrumentFlags: ['*'],
  requireAcceptableSpecimen: true,
  requireInstrument: true,
};

/** An Update's refusal with its cause in the message (the bench prints only the message and stack). */
const explained = <T>(what: string, update: Promise<T>): Promise<T> =>
  update.catch((err: unknown) => {
    throw new Error(`${what}: ${(err as Error).message}: ${(err as { cause?: Error }).cause?.message ?? ''}`);
  });

const r1 = (x: number) => Math.round(x * 10) / 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface People {
  contact: Actor;
  director: Actor;
  /** The lab director's API key and password, for the API path only (never in a run's input). */
  directorLogin: { apiKey: string; password: string };
  techKey: string;
  adminKey: string;
  source: { name: string; secret: string };
}

async function call(p: BenchPlatform, method: string, path: string, key: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${p.baseUrl}/api/v1${path}`, {
    method,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function must(p: BenchPlatform, method: string, path: string, key: string, body?: unknown, ok = [200, 201, 202]) {
  const res = await call(p, method, path, key, body);
  if (!ok.includes(res.status)) throw new Error(`${method} ${path} answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

async function people(p: BenchPlatform): Promise<People> {
  const make = async (name: string, roles: string[]) => {
    const password = `pw-${randomBytes(9).toString('base64url')}`;
    const { user, apiKey } = await createUser(p.db, {
      username: `bench.${name}`,
      printedName: `Bench ${name}`,
      email: `${name}@bench.test`,
      roles: roles as never,
      password,
    });
    return { actor: toActor(user), username: user.username as string, apiKey, password };
  };
  const [tech, contact, director, admin] = [
    await make('tech', ['lab_technician']),
    await make('analyser', ['lab_technician']),
    await make('director', ['lab_director']),
    await make('admin', ['admin']),
  ];
  const created = await must(p, 'POST', '/sample-sources', admin.apiKey, { name: 'bench-analyser', contact: contact.username });
  return {
    contact: contact.actor,
    director: director.actor,
    directorLogin: { apiKey: director.apiKey, password: director.password },
    techKey: tech.apiKey,
    adminKey: admin.apiKey,
    source: { name: 'bench-analyser', secret: created.secret },
  };
}

/** 2N samples accepted by batches and routed for TSH through the API, once each analysis is open (untimed). */
async function routedSamples(p: BenchPlatform, who: People, count: number): Promise<string[]> {
  const findings = {
    identifiers: [
      { type: 'name', value: 'Bench Patient' },
      { type: 'mrn', value: 'MRN-BENCH' },
    ],
    container: 'SST',
    preservative: 'clot_activator',
    volumeMl: 3,
    hemolyzed: false,
    clotted: false,
  };
  const accessions: string[] = [];
  for (let done = 0; done < count; done += 500) {
    const size = Math.min(500, count - done);
    const samples = Array.from({ length: size }, () => ({
      sampleType: 'SERUM',
      tests: [TEST],
      barcode: `BR-${randomBytes(6).toString('hex')}`,
      patient: { name: 'Bench Patient', dob: '1970-01-01', mrn: 'MRN-BENCH', sex: 'female' },
      collectedAt: new Date(Date.now() - 3_600_000).toISOString(),
      arrival: { location: 'Courier box', temperatureC: 4, findings },
    }));
    const { batchId } = await must(p, 'POST', '/sample-batches', who.techKey, { samples, autoAccept: true });
    for (;;) {
      const rows: { accession: string }[] = await p.db('samples').where({ batch_id: batchId, state: 'accepted' }).select('accession');
      if (rows.length >= size) {
        accessions.push(...rows.map((r) => r.accession));
        break;
      }
      await sleep(200);
    }
  }
  let next = 0;
  await Promise.all(
    Array.from({ length: LANES }, async () => {
      while (next < accessions.length) {
        const accession = accessions[next++];
        await must(p, 'POST', `/samples/${accession}/route`, who.techKey, {});
      }
    }),
  );
  for (;;) {
    const { n } = (await p.db('analyses').whereIn('accession', accessions).where({ state: 'pending' }).count({ n: '*' }).first()) as {
      n: string;
    };
    if (Number(n) >= accessions.length) return accessions;
    await sleep(200);
  }
}

/** Fails a poll that waited longer than any run should take, instead of hanging the bench. */
function deadline(what: string): () => void {
  const until = Date.now() + 300_000;
  return () => {
    if (Date.now() > until) throw new Error(`${what}: not within 5 minutes`);
  };
}

/** The report's row once its run is ready for a release (the run's own query, as a raw client asks). */
const reportRow = async (p: BenchPlatform, accession: string) => {
  const check = deadline(`report v1 of ${accession}`);
  for (;;) {
    check();
    const row = await p
      .db('reports')
      .where({ accession, version: 1 })
      .whereNotNull('content')
      .first('workflow_id', 'content_hash', 'state');
    if (row && (await p.client.workflow.getHandle(row.workflow_id).query(reportStateQuery)).state === 'awaiting_release') {
      return row as { workflow_id: string; content_hash: string };
    }
    await sleep(20);
  }
};

let assemblingRetries = 0;

/** Through labflow: the signed webhook, then the lab director's read and signed release. */
async function viaApi(p: BenchPlatform, who: People, accession: string, i: number): Promise<number> {
  const t0 = performance.now();
  const raw = JSON.stringify({
    eventId: `bench-${accession}`,
    type: 'result.reported',
    accession,
    test: TEST,
    messageId: `MSH-${i}`,
    result: { kind: 'numeric', value: 2.1, unit: 'mIU/L', performedBy: 'op-114', instrument: 'COBAS-E411-02' },
  });
  const timestamp = String(Math.floor(Date.now() / 1000));
  const posted = await call(p, 'POST', `/webhooks/${who.source.name}`, '', raw, {
    'x-labflow-timestamp': timestamp,
    'x-labflow-signature': `sha256=${webhookSignature(who.source.secret, timestamp, raw)}`,
  });
  if (posted.status !== 202 || posted.body.analysisState !== 'verified')
    throw new Error(`webhook answered ${posted.status}: ${JSON.stringify(posted.body)}`);
  let contentHash: string;
  const check = deadline(`report v1 of ${accession}`);
  for (;;) {
    check();
    const res = await call(p, 'GET', `/samples/${accession}/reports/v1`, who.directorLogin.apiKey);
    if (res.status === 200 && res.body.state === 'awaiting_release') {
      contentHash = res.body.contentHash;
      break;
    }
    await sleep(20);
  }
  // The row shows `awaiting_release` once the assembly step committed; the run accepts a release from then on (it
  // waits for its own assembly). A 409 "still being assembled" would be retried here, and counted.
  for (;;) {
    check();
    const res = await call(p, 'POST', `/samples/${accession}/reports/v1/release`, who.directorLogin.apiKey, {
      signature: { password: who.directorLogin.password, meaning: 'responsibility', contentHash },
    });
    if (res.status === 200) break;
    if (res.status !== 409 || !String(res.body?.detail).includes('still being assembled')) {
      throw new Error(`release of ${accession} answered ${res.status}: ${JSON.stringify(res.body)}`);
    }
    assemblingRetries++;
    await sleep(20);
  }
  return performance.now() - t0;
}

/** The same runs with the raw client: the rows and grants the API would write, then the runs' Updates directly. */
async function viaClient(p: BenchPlatform, who: People, accession: string, i: number): Promise<number> {
  const t0 = performance.now();
  const deps = { db: p.db, config: p.config };
  const row = await p.db('analyses').where({ accession, test_code: TEST }).first('id', 'workflow_id');
  const entryId = await writeEntry(p.db, row.id, who.contact, {
    kind: 'numeric',
    performed_by: 'op-114',
    instrument: 'COBAS-E411-02',
    qc_run: false,
    instrument_flags: null,
    numeric_value: 2.1,
    unit: 'mIU/L',
    message_id: `MSH-raw-${i}`,
    reported_by_source: who.source.name,
  });
  const grant = await grantAction(deps, who.contact, {
    workflowId: row.workflow_id,
    action: 'analysis.enter',
    args: boundAnalysisArgs('analysis.enter', { entryId }),
  });
  const entered = await explained(
    `entering on ${row.workflow_id}`,
    p.client.workflow.getHandle(row.workflow_id).executeUpdate(enterResultUpdate, { args: [{ entryId, actor: who.contact, grant }] }),
  );
  if (entered.state !== 'verified') throw new Error(`${row.workflow_id} is ${entered.state}, not verified`);
  const report = await reportRow(p, accession);
  const signature = { meaning: 'responsibility', contentHash: report.content_hash, signedAt: new Date().toISOString() };
  const releaseGrant = await grantAction(deps, who.director, {
    workflowId: report.workflow_id,
    action: REPORT_RELEASE,
    args: boundReportReleaseArgs({ signature }),
    signature,
  });
  await explained(
    `releasing ${report.workflow_id}`,
    p.client.workflow
      .getHandle(report.workflow_id)
      .executeUpdate(releaseReportUpdate, { args: [{ actor: who.director, grant: releaseGrant, signature }] }),
  );
  return performance.now() - t0;
}

async function onLanes(accessions: string[], job: (accession: string, i: number) => Promise<number>) {
  const latencies: number[] = [];
  let next = 0;
  let failed = false;
  const started = performance.now();
  // Every lane stops at the first failure, so nothing is still calling when the platform is torn down.
  const lanes = await Promise.allSettled(
    Array.from({ length: LANES }, async () => {
      while (next < accessions.length && !failed) {
        checkInterrupted();
        const i = next++;
        try {
          latencies.push(await job(accessions[i], i));
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    }),
  );
  const failure = lanes.find((l): l is PromiseRejectedResult => l.status === 'rejected');
  if (failure) throw failure.reason;
  return { perSecond: accessions.length / ((performance.now() - started) / 1000), latencies };
}

run(async () => {
  // The lab director signs every release: the signing limit of a person at a keyboard would refuse the bench.
  const p = await startBenchPlatform(say, { settings: UNTRIPPED_LIMITS });
  try {
    const who = await people(p);
    const version = Number((await p.db('autoverification_rule_sets').where({ test_code: TEST }).max({ v: 'version' }).first())?.v ?? 0);
    await must(p, 'POST', `/tests/${TEST}/autoverification-rules`, who.directorLogin.apiKey, {
      basedOnVersion: version || null,
      rules: RULES,
      signature: {
        password: who.directorLogin.password,
        meaning: 'approval',
        contentHash: contentHashOf({ test: TEST, version: version + 1, rules: RULES }),
      },
    });
    say(`setting up ${2 * N} routed ${TEST} samples (untimed)`);
    const accessions = await routedSamples(p, who, 2 * N);
    // Interleaved halves, so neither path always gets the older samples; the raw client's half is measured before
    // and after the API's, so neither path always meets a colder or a busier machine.
    const raw = accessions.filter((_, i) => i % 2 === 0);
    const api = accessions.filter((_, i) => i % 2 === 1);
    const half = Math.ceil(N / 2);
    say(`${half} results with the raw client, ${LANES} at a time`);
    const before = await onLanes(raw.slice(0, half), (a, i) => viaClient(p, who, a, i));
    say(`${N} results through the API, ${LANES} at a time`);
    const through = await onLanes(api, (a, i) => viaApi(p, who, a, i));
    say(`${N - half} results with the raw client, ${LANES} at a time`);
    const after = await onLanes(raw.slice(half), (a, i) => viaClient(p, who, a, half + i));
    const direct = {
      perSecond: N / (half / before.perSecond + (N - half ? (N - half) / after.perSecond : 0)),
      latencies: [...before.latencies, ...after.latencies],
    };
    const released = Number(
      ((await p.db('reports').whereIn('accession', accessions).where({ state: 'released' }).count({ n: '*' }).first()) as { n: string }).n,
    );
    if (released !== 2 * N) throw new Error(`${released} of ${2 * N} reports released`);
    const ratio = Math.round((through.perSecond / direct.perSecond) * 1000) / 1000;
    const figures = {
      results: N,
      lanes: LANES,
      api_results_per_second: r1(through.perSecond),
      raw_client_results_per_second: r1(direct.perSecond),
      api_message_to_released_p50_ms: r1(median(through.latencies)),
      api_message_to_released_p99_ms: r1(percentile(through.latencies, 0.99)),
      raw_message_to_released_p50_ms: r1(median(direct.latencies)),
      raw_message_to_released_p99_ms: r1(percentile(direct.latencies, 0.99)),
      api_releases_retried_while_assembling: assemblingRetries,
    };
    console.log(`\n    through the API (webhook → autoverified → released)   ${figures.api_results_per_second}/s`);
    console.log(`    the same runs with the raw client                     ${figures.raw_client_results_per_second}/s`);
    console.log(`    ratio                                                 ${ratio} (target ≥ ${TARGET})`);
    console.log(
      `    message → released report p50 / p99 (API)             ${figures.api_message_to_released_p50_ms} / ${figures.api_message_to_released_p99_ms} ms`,
    );
    console.log(
      `    message → released report p50 / p99 (raw client)      ${figures.raw_message_to_released_p50_ms} / ${figures.raw_message_to_released_p99_ms} ms\n`,
    );
    console.log(JSON.stringify({ bench: 'results', figures, ratio, target: TARGET, better: 'higher' }));
  } finally {
    await p.stop();
  }
});
