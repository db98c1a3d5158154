/**
 * Batch intake of BENCH_SAMPLES (default 1000) specimens in hand, each received, inspected against its criteria
 * and accepted by its own sample-intake run. Two paths in the same run, on the same dev server and worker process:
 *  - api: POST /api/v1/sample-batches (validation, accession numbers, one transaction, the batch run starting the
 *    sample runs 50 at a time), timed from the call until every sample is accepted in Postgres;
 *  - raw: the same samples registered in Postgres beforehand (untimed), then client.workflow.start for each
 *    (50 at a time), timed from the first start until every sample is accepted.
 * BENCH_ROUNDS (default 4) rounds of both, the order alternating (api first in odd rounds, raw first in even ones)
 * so neither path always runs on a colder or a busier system. Prints each round and the medians over rounds, and
 * ends with one JSON line; ratio = median api / median raw samples per second (higher is better).
 */
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { intakeInput, startIntakeRun, compareIdentifiers } from '../api/temporal/sample-intake';
import { workflowIds } from '../common/ids';
import { createUser, toActor } from '../db/identity';
import { registerSamples, sampleTypes } from '../db/sample-intake';
import { startBenchPlatform, type BenchPlatform } from './lib/bench-platform';
import { median } from './lib/stats';

const N = Number(process.env.BENCH_SAMPLES ?? 1000);
const TARGET = 0.5;
const say = (line: string) => console.log(`[bench:batch-intake] ${line}`);

const patient = { name: 'Bench Patient', dob: '1970-01-01', mrn: 'MRN-BENCH' };
const label = [
  { type: 'name' as const, value: 'Bench Patient' },
  { type: 'mrn' as const, value: 'MRN-BENCH' },
];
const findings = { identifiers: label, container: 'SST', preservative: 'clot_activator', volumeMl: 3, hemolyzed: false, clotted: false };
const item = () => ({
  sampleType: 'SERUM',
  tests: ['CMP'],
  barcode: `BB-${randomBytes(6).toString('hex')}`,
  patient,
  collectedAt: new Date(Date.now() - 3_600_000).toISOString(),
  arrival: { location: 'Courier box', temperatureC: 4, findings },
});

async function waitAccepted(p: BenchPlatform, where: Record<string, string>, accessions?: string[]): Promise<void> {
  for (;;) {
    const q = p.db('samples').where(where).whereIn('state', ['accepted']);
    if (accessions) q.whereIn('accession', accessions);
    const { n } = (await q.count({ n: '*' }).first()) as { n: number };
    if (Number(n) >= N) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);

const rate = (ms: number) => Math.round((N / (ms / 1000)) * 10) / 10;

/** One API round: the call, then every sample accepted. */
async function apiRound(p: BenchPlatform, apiKey: string): Promise<{ ms: number; answeredMs: number }> {
  const body = JSON.stringify({ samples: Array.from({ length: N }, item), autoAccept: true });
  const t0 = performance.now();
  const res = await fetch(`${p.baseUrl}/api/v1/sample-batches`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body,
  });
  const answer = (await res.json()) as { batchId: string };
  if (res.status !== 202) throw new Error(`batch answered ${res.status}: ${JSON.stringify(answer)}`);
  const answeredMs = performance.now() - t0;
  await waitAccepted(p, { batch_id: answer.batchId });
  return { ms: performance.now() - t0, answeredMs };
}

/** One raw round: the samples registered untimed, then the runs started with the client until every one is accepted. */
async function rawRound(p: BenchPlatform, actor: ReturnType<typeof toActor>, source: string): Promise<{ ms: number }> {
  const types = await sampleTypes(p.db);
  const receivedAt = new Date().toISOString();
  const rows = await p.db.transaction((trx) =>
    registerSamples(
      trx,
      Array.from({ length: N }, item).map((s) => ({ ...s, priority: 'routine' as const, requestedTests: s.tests, arrival: undefined })),
      {
        source,
        submitterId: actor.userId,
        actor: actor.username,
        actorId: actor.userId,
        workflowIdOf: workflowIds.sampleIntake,
      },
    ),
  );
  const inputs = rows.map((row) => ({
    ...intakeInput(row, types.get('SERUM')!, { kind: 'user' as const, userId: actor.userId, username: actor.username }),
    arrival: {
      autoAccept: true,
      receipt: { actor: null, by: actor.username, receivedAt, location: 'Courier box', temperatureC: 4 },
      inspection: {
        actor: null,
        findings: {
          ...findings,
          temperatureC: 4,
          identifiers: compareIdentifiers(
            { patient_name: patient.name, patient_dob: patient.dob, patient_mrn: patient.mrn },
            label,
          ),
        },
        contentHash: '',
      },
    },
  }));
  const t1 = performance.now();
  for (let i = 0; i < inputs.length; i += 50)
    await Promise.all(inputs.slice(i, i + 50).map((input) => startIntakeRun(p.client, p.config.taskQueue, input)));
  await waitAccepted(p, { source });
  return { ms: performance.now() - t1 };
}

async function main(): Promise<void> {
  const p = await startBenchPlatform(say);
  try {
    const { user, apiKey } = await createUser(p.db, {
      username: 'bench.tech',
      printedName: 'Bench Tech',
      email: 'tech@bench.test',
      roles: ['lab_technician'],
    });
    const actor = toActor(user);
    const api: { ms: number; answeredMs: number }[] = [];
    const raw: { ms: number }[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const order = round % 2 === 1 ? (['api', 'raw'] as const) : (['raw', 'api'] as const);
      for (const path of order) {
        if (path === 'api') {
          const r = await apiRound(p, apiKey);
          api.push(r);
          say(
            `round ${round} api: 202 after ${r.answeredMs.toFixed(0)} ms, all ${N} accepted after ${r.ms.toFixed(0)} ms (${rate(r.ms)}/s)`,
          );
        } else {
          const r = await rawRound(p, actor, `bench-raw-${round}`);
          raw.push(r);
          say(`round ${round} raw: all ${N} accepted after ${r.ms.toFixed(0)} ms (${rate(r.ms)}/s)`);
        }
      }
    }

    const apiRate = Math.round(median(api.map((r) => rate(r.ms))) * 10) / 10;
    const rawRate = Math.round(median(raw.map((r) => rate(r.ms))) * 10) / 10;
    const answeredMs = median(api.map((r) => r.answeredMs));
    const ratio = Math.round((apiRate / rawRate) * 1000) / 1000;
    console.log(`\nbatch-intake: ${N} samples, call → all accepted, medians of ${ROUNDS} rounds (order alternating)`);
    console.log(`  api  ${apiRate.toFixed(1).padStart(8)} samples/s  (202 after ${answeredMs.toFixed(0)} ms)`);
    console.log(`  raw  ${rawRate.toFixed(1).padStart(8)} samples/s`);
    console.log(`  api/raw ${ratio} (target ≥ ${TARGET})\n`);
    console.log(
      JSON.stringify({
        bench: 'batch-intake',
        figures: {
          samples: N,
          rounds: ROUNDS,
          api_samples_per_s: apiRate,
          raw_samples_per_s: rawRate,
          api_answer_ms: Math.round(answeredMs),
          api_samples_per_s_by_round: api.map((r) => rate(r.ms)),
          raw_samples_per_s_by_round: raw.map((r) => rate(r.ms)),
        },
        ratio,
        target: TARGET,
        better: 'higher',
      }),
    );
  } finally {
    say('stopping the API, the worker and the dev server; dropping the database');
    await p.stop();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`[bench:batch-intake] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
