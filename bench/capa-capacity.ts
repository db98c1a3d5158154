/**
 * What 1,000 open CAPAs cost: the worker's resident memory once 1,000 CAPA runs (triaged, each waiting on its
 * containment deadline) have gone idle, and the p50 latency of an action Update through the API (POST
 * /capas/:n/investigation) with 1,000 open against the same with one CAPA open. The baseline brackets the
 * subject: it is measured before the 1,000 are opened and again after they are terminated (their projection rows
 * stay), each phase after its own warm-up, and its p50/p99 are taken over both phases' samples, so neither a cold
 * start nor the order favours one side. The worker runs as its own process, as deployed; its RSS is read from
 * /proc. BENCH_CAPAS (default 1000), BENCH_SAMPLES (default 100 a phase) and BENCH_WARMUP (default 10 a phase)
 * size it. Prints figures, then one JSON line.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { startCapaRun } from '../api/temporal/capa';
import { capaStateQuery } from '../common/capa';
import type { Actor, Role } from '../common/roles';
import { createUser, toActor } from '../db/identity';
import { startBenchPlatform, type BenchPlatform } from './lib/bench-platform';

const CAPAS = positiveInt('BENCH_CAPAS', 1000);
const SAMPLES = positiveInt('BENCH_SAMPLES', 100);
const WARMUP = positiveInt('BENCH_WARMUP', 10);
const TARGET = 1.2;

function positiveInt(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`);
  return value;
}
const say = (line: string) => console.log(`[bench:capa-capacity] ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resident memory of the worker process(es) this bench started: descendants running workers/main. */
function workerRssBytes(): number {
  const parentOf = new Map<number, number>();
  const pids = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      parentOf.set(pid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // the process ended meanwhile
    }
  }
  const descends = (pid: number) => {
    for (let p = parentOf.get(pid); p && p > 1; p = parentOf.get(p)) if (p === process.pid) return true;
    return false;
  };
  let total = 0;
  for (const pid of pids.filter(descends)) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('workers/main')) continue;
      const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (rss) total += Number(rss[1]) * 1024;
    } catch {
      // the process ended meanwhile
    }
  }
  if (!total) throw new Error('the worker process was not found under /proc');
  return total;
}

async function main(): Promise<void> {
  const p = await startBenchPlatform(say);
  try {
    report(await measure(p));
  } finally {
    say('stopping the API, the worker and the dev server; dropping the database');
    await p.stop();
  }
}

async function measure(p: BenchPlatform) {
  const { db, client, config, baseUrl } = p;
  const user = async (name: string, roles: Role[]) => {
    const { user: row, apiKey } = await createUser(db, {
      username: `bench.${name}`,
      printedName: `Bench ${name}`,
      email: `${name}@bench.test`,
      roles,
    });
    return { actor: toActor(row) as Actor, apiKey };
  };
  const qa = await user('qa', ['qa_manager']);
  const owner = await user('owner', ['lab_technician']);
  const ownerRef = { kind: 'user' as const, userId: owner.actor.userId, username: owner.actor.username };
  const initiatedBy = { userId: owner.actor.userId, username: owner.actor.username };

  const newCapa = (i: number) =>
    startCapaRun(client, db, config.taskQueue, {
      title: `Bench CAPA ${i}`,
      description: 'Capacity bench',
      sources: [{ type: 'other', id: `B-${i}` }],
      initiatedBy,
    });
  const waitStage = async (number: string, stage: string) => {
    for (let tries = 0; (await client.workflow.getHandle(`capa:${number}`).query(capaStateQuery)).stage !== stage; tries++) {
      if (tries > 600) throw new Error(`capa:${number} did not reach ${stage}`);
      await sleep(50);
    }
  };
  const triage = async (number: string) => {
    await waitStage(number, 'triage');
    // Through the API: a run records only actions whose grant labflow's API wrote.
    await api('POST', `/capas/${number}/triage`, qa.apiKey, { decision: 'accept', severity: 3, occurrence: 3, owner: ownerRef.username });
  };
  /** A CAPA in investigation, where the owner may record the root cause again and again. */
  const investigating = async (i: number) => {
    const { number } = await newCapa(i);
    await triage(number);
    await api('POST', `/capas/${number}/containment`, owner.apiKey, { summary: 'Contained', actions: [] });
    return number;
  };
  const api = async (method: string, path: string, key: string, body: unknown) => {
    const res = await fetch(`${baseUrl}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const parsed = await res.json();
    if (res.status !== 200) throw new Error(`${method} ${path} answered ${res.status}: ${JSON.stringify(parsed)}`);
    return parsed;
  };
  const updateLatencies = async (number: string) => {
    const samples: number[] = [];
    for (let i = 0; i < WARMUP + SAMPLES; i++) {
      const started = performance.now();
      await api('POST', `/capas/${number}/investigation`, owner.apiKey, {
        method: 'five_whys',
        rootCause: `cause ${i}`,
        findings: `finding ${i}`,
      });
      if (i >= WARMUP) samples.push(performance.now() - started);
    }
    return samples;
  };
  const settle = async () => {
    await sleep(5000);
    return workerRssBytes();
  };

  say('one CAPA open: measuring the baseline update latency (before)');
  const single = await investigating(0);
  const rssOne = await settle();
  const oneOpenBefore = await updateLatencies(single);

  say(`opening ${CAPAS} CAPAs and triaging each (owner assigned, containment deadline running)`);
  const started = performance.now();
  let next = 1;
  const numbers: string[] = [];
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next <= CAPAS) {
        const i = next++;
        const { number } = await newCapa(i);
        await triage(number);
        numbers.push(number);
        if (numbers.length % 200 === 0) say(`  ${numbers.length} open`);
      }
    }),
  );
  const openSeconds = (performance.now() - started) / 1000;
  const open = await db('capas').whereNotIn('stage', ['closed', 'cancelled']).count<{ count: string }[]>('* as count');
  say(`${open[0].count} CAPAs open in the projection; letting the runs go idle`);
  const rssMany = await settle();

  say(`${CAPAS} CAPAs open: measuring the same update on one of them`);
  const loaded = await investigating(CAPAS + 1);
  const manyOpen = await updateLatencies(loaded);

  say(`terminating the ${CAPAS + 1} runs opened for the load; measuring the baseline again (after) on the first CAPA`);
  const others = [...numbers, loaded];
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      for (let number = others.pop(); number; number = others.pop()) {
        await client.workflow.getHandle(`capa:${number}`).terminate('capacity bench: load removed');
      }
    }),
  );
  await sleep(5000);
  const oneOpenAfter = await updateLatencies(single);
  return { oneOpenBefore, oneOpenAfter, manyOpen, rssOne, rssMany, openSeconds };
}

function percentile(samples: number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
const r3 = (n: number) => Math.round(n * 1000) / 1000;

function report(m: Awaited<ReturnType<typeof measure>>): void {
  const mb = (b: number) => r3(b / 1024 / 1024);
  const figures = {
    capas_open: CAPAS,
    worker_rss_one_open_mb: mb(m.rssOne),
    worker_rss_many_open_mb: mb(m.rssMany),
    worker_rss_per_run_kb: r3((m.rssMany - m.rssOne) / CAPAS / 1024),
    open_and_triage_seconds: r3(m.openSeconds),
    update_p50_one_open_ms: r3(percentile([...m.oneOpenBefore, ...m.oneOpenAfter], 0.5)),
    update_p99_one_open_ms: r3(percentile([...m.oneOpenBefore, ...m.oneOpenAfter], 0.99)),
    update_p50_one_open_before_ms: r3(percentile(m.oneOpenBefore, 0.5)),
    update_p50_one_open_after_ms: r3(percentile(m.oneOpenAfter, 0.5)),
    update_p50_many_open_ms: r3(percentile(m.manyOpen, 0.5)),
    update_p99_many_open_ms: r3(percentile(m.manyOpen, 0.99)),
  };
  const ratio = r3(figures.update_p50_many_open_ms / figures.update_p50_one_open_ms);
  console.log(
    `\ncapa-capacity: ${CAPAS} open CAPA runs; ${SAMPLES} update samples after ${WARMUP} warm-up in each phase (one open, ${CAPAS} open, one open)`,
  );
  console.log(
    `worker RSS   one open ${figures.worker_rss_one_open_mb} MB, ${CAPAS} open ${figures.worker_rss_many_open_mb} MB, ${figures.worker_rss_per_run_kb} kB per run`,
  );
  console.log(
    `update p50   one open ${figures.update_p50_one_open_ms} ms (before ${figures.update_p50_one_open_before_ms}, after ${figures.update_p50_one_open_after_ms}), ${CAPAS} open ${figures.update_p50_many_open_ms} ms (p99 ${figures.update_p99_one_open_ms} / ${figures.update_p99_many_open_ms} ms)`,
  );
  console.log(`ratio ${ratio} (target ≤ ${TARGET})\n`);
  console.log(JSON.stringify({ bench: 'capa-capacity', figures, ratio, target: TARGET, better: 'lower' }));
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`[bench:capa-capacity] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
