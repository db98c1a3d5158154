/**
 * Batch intake of BENCH_SAMPLES (default 1000) specimens in hand, each received, inspected against its criteria
 * and accepted by its own sample-intake run. Two paths in the same run, on the same dev server and worker process:
 *  - api: POST /api/v1/sample-batches (validation, accession numbers, one transaction, the batch run starting the
 *    sample runs 50 at a time), timed from the call until every sample is accepted in Postgres;
 *  - raw: the same samples registered in Postgres beforehand (untimed), then client.workflow.start for each
 *    (50 at a time), timed from the first start until every sample is accepted.
 * Prints samples/s for both and ends with one JSON line; ratio = api / raw samples per second (higher is better).
 */
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { intakeInput, startIntakeRun, compareIdentifiers } from '../api/temporal/sample-intake';
import { workflowIds } from '../common/ids';
import { createUser, toActor } from '../db/identity';
import { registerSamples, sampleTypes } from '../db/sample-intake';
import { startBenchPlatform, type BenchPlatform } from './lib/bench-platform';

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

    say(`api path: POST /sample-batches with ${N} specimens in hand (autoAccept)`);
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
    const apiMs = performance.now() - t0;
    const progress = (await (
      await fetch(`${p.baseUrl}/api/v1/sample-batches/${answer.batchId}`, { headers: { authorization: `Bearer ${apiKey}` } })
    ).json()) as { byState: Record<string, number> };
    say(
      `api: answered 202 in ${answeredMs.toFixed(0)} ms, all ${N} accepted after ${apiMs.toFixed(0)} ms; progress ${JSON.stringify(progress.byState)}`,
    );

    say(`raw path: ${N} samples registered in Postgres (untimed), then client.workflow.start, 50 at a time`);
    const types = await sampleTypes(p.db);
    const receivedAt = new Date().toISOString();
    const rows = await p.db.transaction((trx) =>
      registerSamples(
        trx,
        Array.from({ length: N }, item).map((s) => ({ ...s, priority: 'routine' as const, requestedTests: s.tests, arrival: undefined })),
        {
          source: 'bench-raw',
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
              { patient_name: patient.name, patient_dob: new Date(patient.dob), patient_mrn: patient.mrn },
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
    const startedMs = performance.now() - t1;
    await waitAccepted(p, { source: 'bench-raw' });
    const rawMs = performance.now() - t1;
    say(`raw: ${N} started in ${startedMs.toFixed(0)} ms, all accepted after ${rawMs.toFixed(0)} ms`);

    const apiRate = Math.round((N / (apiMs / 1000)) * 10) / 10;
    const rawRate = Math.round((N / (rawMs / 1000)) * 10) / 10;
    const ratio = Math.round((apiRate / rawRate) * 1000) / 1000;
    console.log(`\nbatch-intake: ${N} samples, call → all accepted`);
    console.log(
      `  api  ${apiRate.toFixed(1).padStart(8)} samples/s  (${(apiMs / 1000).toFixed(2)} s; 202 after ${answeredMs.toFixed(0)} ms)`,
    );
    console.log(`  raw  ${rawRate.toFixed(1).padStart(8)} samples/s  (${(rawMs / 1000).toFixed(2)} s)`);
    console.log(`  api/raw ${ratio} (target ≥ ${TARGET})\n`);
    console.log(
      JSON.stringify({
        bench: 'batch-intake',
        figures: {
          samples: N,
          api_samples_per_s: apiRate,
          raw_samples_per_s: rawRate,
          api_total_ms: Math.round(apiMs),
          raw_total_ms: Math.round(rawMs),
          api_answer_ms: Math.round(answeredMs),
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
