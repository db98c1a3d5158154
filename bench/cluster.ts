/**
 * labflow on the production-shaped Temporal cluster against the dev server, same run, same machine, driven through
 * the HTTP API at a fixed concurrency (BENCH_CONCURRENCY lanes, default 8, each lane its own author, approver and
 * technician):
 *
 * 1. Throughput. Three configurations, each with its own task queue, worker processes and one API process:
 *    dev (the Temporal dev server, one worker), cluster-1 (the Go-built server on PostgreSQL with SQL visibility and
 *    mTLS, one worker) and cluster-2 (the same server, two workers). Each runs BENCH_FLOWS document approvals (one
 *    approver; submit → effective) and BENCH_FLOWS sample intakes (register → accepted), interleaved, after
 *    BENCH_WARMUP discarded flows. BENCH_ROUNDS rounds (default 2), the order of the configurations reversed in
 *    even rounds; throughput is the median over rounds, action latencies are pooled. Ratios: cluster-1 / dev and
 *    cluster-2 / cluster-1, for throughput and for each action's p50.
 * 2. Open runs. On cluster-2, approvals are submitted and left in review until BENCH_OPEN_RUNS (default 10,000)
 *    are open. At each checkpoint on the way (BENCH_OPEN_CHECKPOINTS, default 1000,2500,5000) BENCH_CHECKPOINT_SAMPLES
 *    (default 50) of them, spread over the whole set, are read and signed at the same concurrency, and at the end
 *    BENCH_OPEN_SAMPLES (default 200): the p50/p99 of a person's action with that many runs open, against
 *    cluster-2's figures from part 1, and each worker's resident memory (its sticky cache bounded by
 *    WORKER_MAX_CACHED_WORKFLOWS when set). Each checkpoint's figures are printed as it is reached.
 *
 * Everything runs on a PostgreSQL of the bench's own (BENCH_DATABASE_URL: scratch databases on an existing server
 * instead) and temporary directories, removed at the end. Ctrl-C stops at the next step and cleans up (the bench runs in a process group of its own,
 * so the terminal's Ctrl-C reaches only this front process, which stops the parts in order; a second Ctrl-C quits
 * at once and the processes left in the group are ended). Prints tables, then one JSON line.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createDb, type Db } from '../db/knex';
import { createAuditChainKeyFile } from '../db/audit-chain';
import { createUser } from '../db/identity';
import { generatePayloadKeys } from '../platform/payload-codec';
import { runInOwnProcessGroup } from '../scripts/lib/process-group';
import { createBenchDatabase } from './lib/bench-database';
import { startBenchPostgres } from './lib/bench-postgres';
import { residentMemory, startBenchProcesses } from './lib/bench-processes';
import { benchRun, UNTRIPPED_LIMITS } from './lib/bench-run';
import { startBenchCluster, startBenchDevServer, type BenchTemporal } from './lib/bench-servers';
import { APPROVAL_ACTIONS, INTAKE_ACTIONS, LabClient, onLanes, Timings, type Action, type LanePeople } from './lib/lab-flows';
import { median, percentile } from './lib/stats';

const bench = benchRun('cluster');
const { say } = bench;
const ORCHESTRATE = '--orchestrate';

const CONCURRENCY = bench.intSetting('BENCH_CONCURRENCY', 8);
const FLOWS = bench.intSetting('BENCH_FLOWS', 100);
const WARMUP = bench.intSetting('BENCH_WARMUP', 16, 0);
const ROUNDS = bench.intSetting('BENCH_ROUNDS', 2);
const OPEN_RUNS = bench.intSetting('BENCH_OPEN_RUNS', 10_000, 0);
const OPEN_SAMPLES = bench.intSetting('BENCH_OPEN_SAMPLES', 200);
/** Run counts at which a smaller sample is signed on the way (BENCH_OPEN_CHECKPOINTS, comma-separated), then OPEN_RUNS. */
const OPEN_CHECKPOINTS = [
  ...new Set([...(process.env.BENCH_OPEN_CHECKPOINTS ?? '1000,2500,5000').split(',').map(Number), OPEN_RUNS]),
]
  .filter((n) => Number.isInteger(n) && n > 0 && n <= OPEN_RUNS)
  .sort((a, b) => a - b);
const CHECKPOINT_SAMPLES = bench.intSetting('BENCH_CHECKPOINT_SAMPLES', 50);
const PASSWORD = 'bench-signing-password';
const ACTIONS: Action[] = [...APPROVAL_ACTIONS, ...INTAKE_ACTIONS];

type ConfigName = 'dev' | 'cluster-1' | 'cluster-2';
const ALL_CONFIGS: { name: ConfigName; server: 'dev' | 'cluster'; workers: number }[] = [
  { name: 'dev', server: 'dev', workers: 1 },
  { name: 'cluster-1', server: 'cluster', workers: 1 },
  { name: 'cluster-2', server: 'cluster', workers: 2 },
];
/** BENCH_CONFIGS (comma-separated) measures some of them only, e.g. while trying the bench out. */
const CONFIGS = configsSetting(process.env.BENCH_CONFIGS);
const needs = (server: 'dev' | 'cluster') => CONFIGS.some((c) => c.server === server) || (server === 'cluster' && OPEN_RUNS > 0);

function configsSetting(value: string | undefined) {
  if (!value) return ALL_CONFIGS;
  const names = value.split(',').map((n) => n.trim());
  const unknown = names.filter((n) => !ALL_CONFIGS.some((c) => c.name === n));
  if (unknown.length || names.length === 0) throw new Error(`BENCH_CONFIGS: expected some of ${ALL_CONFIGS.map((c) => c.name).join(', ')}`);
  return ALL_CONFIGS.filter((c) => names.includes(c.name));
}

interface PhaseResult {
  flowsPerSecond: number;
  timings: Timings;
  /** Each worker's resident memory (MiB) at the end of the phase. */
  workerRssMiB: number[];
}

type OpenedRun = { number: string; version: number; workflowId: string; lane: number };

/** What a person's action costs with `open` approvals in review, and each worker's memory then. */
interface Checkpoint {
  open: number;
  openedPerSecond: number;
  timings: Timings;
  rssOpen: number[];
  rssAfterActions: number[];
  peak: number[];
}

interface OpenResult {
  afterStart: number[];
  checkpoints: Checkpoint[];
}

interface Stack {
  adminUrl: string;
  db: Db;
  servers: Partial<Record<'dev' | 'cluster', BenchTemporal>>;
  /** What every worker and API process reads, beside its server's settings and its task queue. */
  settings: Record<string, string>;
  lanes: LanePeople[];
}

async function main(): Promise<void> {
  const cleanups: (() => Promise<unknown>)[] = [];
  const cleanUp = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((err: Error) => say(`cleanup: ${err.message}`));
  };
  const started = Date.now();
  try {
    const stack = await bringUp(cleanups);
    const results = new Map<ConfigName, PhaseResult[]>(CONFIGS.map((c) => [c.name, []]));
    for (let round = 1; round <= ROUNDS; round++) {
      const order = round % 2 === 1 ? CONFIGS : [...CONFIGS].reverse();
      for (const config of order) {
        bench.checkInterrupted();
        const result = await phase(stack, config, `round ${round}`);
        results.get(config.name)!.push(result);
        say(
          `round ${round} ${config.name}: ${result.flowsPerSecond.toFixed(2)} flows/s, worker RSS ${result.workerRssMiB.join(' + ')} MiB`,
        );
      }
    }
    const open = OPEN_RUNS > 0 ? await openRuns(stack) : undefined;
    report(results, open, Date.now() - started);
  } finally {
    say('stopping the servers; dropping the databases and roles');
    await cleanUp();
  }
}

async function bringUp(cleanups: (() => Promise<unknown>)[]): Promise<Stack> {
  let server = process.env.BENCH_DATABASE_URL;
  if (!server) {
    say('starting a PostgreSQL of the bench\'s own (BENCH_DATABASE_URL uses an existing server instead)');
    const own = await startBenchPostgres(400);
    cleanups.push(() => own.stop());
    server = own.adminUrl;
  }
  const base = new URL(server);
  const adminUrl = new URL(base);
  adminUrl.pathname = '/postgres';
  base.pathname = `/labflow_bench_${process.pid}_${randomBytes(3).toString('hex')}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'labflow-bench-'));
  cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));

  say(
    `creating a database; starting ${[needs('dev') && 'a Temporal dev server', needs('cluster') && 'the Temporal cluster (PostgreSQL, SQL visibility, mTLS)'].filter(Boolean).join(' and ')}`,
  );
  const [database, dev, cluster] = await Promise.allSettled([
    createBenchDatabase(base.toString()).then((d) => (cleanups.push(() => d.drop()), d)),
    needs('dev') ? startBenchDevServer().then((s) => (cleanups.push(() => s.stop()), s)) : undefined,
    needs('cluster') ? startBenchCluster(adminUrl.toString(), say).then((s) => (cleanups.push(() => s.stop()), s)) : undefined,
  ]);
  for (const r of [database, dev, cluster]) if (r.status === 'rejected') throw r.reason;
  const urls = (database as PromiseFulfilledResult<Awaited<ReturnType<typeof createBenchDatabase>>>).value.urls;
  const db = createDb(base.toString(), 10);
  cleanups.push(() => db.destroy());

  const auditKey = join(dataDir, 'audit-chain.key');
  createAuditChainKeyFile(auditKey);
  const settings: Record<string, string> = {
    ...UNTRIPPED_LIMITS,
    DATABASE_URL: urls.app,
    BACKUP_DATABASE_URL: urls.backup,
    DATA_DIR: dataDir,
    PAYLOAD_KEYS: generatePayloadKeys('bench'),
    AUDIT_CHAIN_KEY_FILE: auditKey,
    ...(process.env.WORKER_MAX_CACHED_WORKFLOWS ? { WORKER_MAX_CACHED_WORKFLOWS: process.env.WORKER_MAX_CACHED_WORKFLOWS } : {}),
  };
  say(`creating ${CONCURRENCY} lanes of people (author, approver, technician)`);
  const lanes: LanePeople[] = [];
  for (let i = 0; i < CONCURRENCY; i++) {
    const person = async (role: 'author' | 'reviewer' | 'lab_technician', name: string) =>
      createUser(db, { username: `bench.${name}${i}`, printedName: `Bench ${name} ${i}`, email: `${name}${i}@bench.test`, roles: [role], password: PASSWORD });
    const author = await person('author', 'author');
    const reviewer = await person('reviewer', 'approver');
    const tech = await person('lab_technician', 'tech');
    lanes.push({
      author: author.apiKey,
      reviewer: { username: reviewer.user.username, apiKey: reviewer.apiKey, password: PASSWORD },
      tech: tech.apiKey,
    });
  }
  return {
    adminUrl: adminUrl.toString(),
    db,
    servers: { dev: (dev as PromiseFulfilledResult<BenchTemporal | undefined>).value, cluster: (cluster as PromiseFulfilledResult<BenchTemporal | undefined>).value },
    settings,
    lanes,
  };
}

/** One configuration: its processes started, warmed up, measured, stopped. */
async function phase(stack: Stack, config: (typeof CONFIGS)[number], label: string): Promise<PhaseResult> {
  const server = stack.servers[config.server]!;
  say(`${label} ${config.name}: starting ${config.workers} worker(s) and an API process on the ${config.server === 'dev' ? 'dev server' : 'cluster'}`);
  const processes = await startBenchProcesses(config.workers, {
    ...stack.settings,
    ...server.settings,
    TEMPORAL_TASK_QUEUE: `bench-${config.name}-${randomBytes(3).toString('hex')}`,
  });
  try {
    const flow = (timings: Timings) => {
      const client = new LabClient(processes.baseUrl, stack.db, timings);
      // Approvals and intakes interleaved, so each configuration carries the same mix at every moment.
      return (lane: number, i: number) => (i % 2 === 0 ? client.approval(stack.lanes[lane], i) : client.intake(stack.lanes[lane]));
    };
    if (WARMUP > 0) await onLanes(CONCURRENCY, WARMUP, flow(new Timings()), bench.checkInterrupted);
    say(`${label} ${config.name}: ${FLOWS} approvals and ${FLOWS} intakes at concurrency ${CONCURRENCY}`);
    const timings = new Timings();
    const t0 = performance.now();
    await onLanes(CONCURRENCY, 2 * FLOWS, flow(timings), bench.checkInterrupted);
    const seconds = (performance.now() - t0) / 1000;
    return {
      flowsPerSecond: (2 * FLOWS) / seconds,
      timings,
      workerRssMiB: processes.workers.map((w) => residentMemory(w.pid!).rssMiB),
    };
  } finally {
    await processes.stop();
  }
}

/** cluster-2 with approvals left in review, growing to OPEN_RUNS; at each checkpoint a sample of them read and signed. */
async function openRuns(stack: Stack): Promise<OpenResult> {
  say(`open runs: starting 2 workers and an API process on the cluster`);
  const processes = await startBenchProcesses(2, {
    ...stack.settings,
    ...stack.servers.cluster!.settings,
    TEMPORAL_TASK_QUEUE: `bench-open-${randomBytes(3).toString('hex')}`,
  });
  const memory = () => processes.workers.map((w) => residentMemory(w.pid!));
  try {
    const afterStart = memory().map((m) => m.rssMiB);
    const client = new LabClient(processes.baseUrl, stack.db, new Timings());
    const opened: OpenedRun[] = [];
    const signed = new Set<string>();
    const checkpoints: Checkpoint[] = [];
    say(`open runs: submitting ${OPEN_RUNS} approvals and leaving them in review (concurrency ${CONCURRENCY}); checkpoints at ${OPEN_CHECKPOINTS.join(', ')}`);
    const t0 = performance.now();
    let lastReport = t0;
    for (const target of OPEN_CHECKPOINTS) {
      const from = opened.length;
      await onLanes(
        CONCURRENCY,
        target - from,
        async (lane, i) => {
          opened.push({ ...(await client.openApproval(stack.lanes[lane], from + i)), lane });
          if (performance.now() - lastReport > 30_000) {
            lastReport = performance.now();
            const rate = (opened.length / ((lastReport - t0) / 1000)).toFixed(1);
            say(`open runs: ${opened.length} of ${OPEN_RUNS} in review (${rate}/s), worker RSS ${memory().map((m) => m.rssMiB).join(' + ')} MiB`);
          }
        },
        bench.checkInterrupted,
      );
      const openedPerSecond = opened.length / ((performance.now() - t0) / 1000);
      const rssOpen = memory().map((m) => m.rssMiB);
      // Spread over the whole set, so most were opened long ago (out of a bounded cache) and a few recently.
      const waiting = opened.filter((r) => !signed.has(r.workflowId));
      const count = Math.min(target === OPEN_RUNS ? OPEN_SAMPLES : CHECKPOINT_SAMPLES, waiting.length);
      const chosen = Array.from({ length: count }, (_, k) => waiting[Math.floor((k * waiting.length) / count)]);
      chosen.forEach((r) => signed.add(r.workflowId));
      const timings = new Timings();
      const acting = new LabClient(processes.baseUrl, stack.db, timings);
      await onLanes(CONCURRENCY, count, (_, k) => acting.approve(stack.lanes[chosen[k].lane], chosen[k]), bench.checkInterrupted);
      const after = memory();
      const point: Checkpoint = {
        open: waiting.length,
        openedPerSecond,
        timings,
        rssOpen,
        rssAfterActions: after.map((m) => m.rssMiB),
        peak: after.map((m) => m.peakMiB),
      };
      checkpoints.push(point);
      const decisions = timings.of('POST …/decisions');
      say(
        `open runs: checkpoint ${waiting.length} open: ${count} signed, decision p50 ${percentile(decisions, 0.5).toFixed(0)} ms ` +
          `p99 ${percentile(decisions, 0.99).toFixed(0)} ms; worker RSS ${point.rssOpen.join(' + ')} → ${point.rssAfterActions.join(' + ')} MiB`,
      );
    }
    return { afterStart, checkpoints };
  } finally {
    await processes.stop();
  }
}

const r1 = (n: number) => Math.round(n * 10) / 10;
const r3 = (n: number) => Math.round(n * 1000) / 1000;

function table(header: string[], rows: string[][]): void {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) => cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  rows.forEach((r) => console.log(line(r)));
}

function report(results: Map<ConfigName, PhaseResult[]>, open: OpenResult | undefined, elapsedMs: number): void {
  const figures: Record<string, unknown> = { concurrency: CONCURRENCY, flows: FLOWS, rounds: ROUNDS, warmup: WARMUP };
  const throughput = {} as Record<ConfigName, number>;
  const pooled = {} as Record<ConfigName, Timings>;
  for (const [name, phases] of results) {
    throughput[name] = median(phases.map((p) => p.flowsPerSecond));
    pooled[name] = new Timings();
    phases.forEach((p) => pooled[name].merge(p.timings));
    figures[`${name}_flows_per_s`] = r3(throughput[name]);
    figures[`${name}_flows_per_s_by_round`] = phases.map((p) => r3(p.flowsPerSecond));
    figures[`${name}_worker_rss_mib_by_round`] = phases.map((p) => p.workerRssMiB);
  }
  const ratios = {
    throughput_cluster1_over_dev: r3(throughput['cluster-1'] / throughput.dev),
    throughput_cluster2_over_cluster1: r3(throughput['cluster-2'] / throughput['cluster-1']),
  };
  console.log(
    `\ncluster: ${FLOWS} approvals (one approver, submit → effective) + ${FLOWS} intakes (register → accepted) per configuration and round, ` +
      `concurrency ${CONCURRENCY}, ${ROUNDS} round(s) (order reversed in even rounds), after ${WARMUP} warm-up flows`,
  );
  table(
    ['configuration', 'flows/s (median)', 'by round'],
    CONFIGS.map((c) => [c.name, throughput[c.name].toFixed(2), (figures[`${c.name}_flows_per_s_by_round`] as number[]).map((n) => n.toFixed(2)).join(', ')]),
  );
  console.log(`throughput ratios: cluster-1 / dev ${ratios.throughput_cluster1_over_dev}, cluster-2 / cluster-1 ${ratios.throughput_cluster2_over_cluster1}\n`);

  const ms = (xs: number[], p: number) => (xs.length ? percentile(xs, p) : NaN);
  const actions: Record<string, unknown> = {};
  figures.actions = actions;
  const rows = ACTIONS.map((action) => {
    const [dev, c1, c2] = ALL_CONFIGS.map((c) => pooled[c.name]?.of(action) ?? []);
    const cells = [dev, c1, c2].flatMap((xs) => [ms(xs, 0.5), ms(xs, 0.99)]);
    const ratio1 = ms(c1, 0.5) / ms(dev, 0.5);
    const ratio2 = ms(c2, 0.5) / ms(c1, 0.5);
    actions[action] = {
      ...Object.fromEntries(ALL_CONFIGS.map((c, i) => [c.name, { p50_ms: r1(cells[2 * i]), p99_ms: r1(cells[2 * i + 1]) }])),
      p50_cluster1_over_dev: r3(ratio1),
      p50_cluster2_over_cluster1: r3(ratio2),
    };
    return [action, ...cells.map((n) => n.toFixed(0)), ratio1.toFixed(2), ratio2.toFixed(2)];
  });
  table(['action (ms)', 'dev p50', 'dev p99', 'c-1 p50', 'c-1 p99', 'c-2 p50', 'c-2 p99', 'p50 c-1/dev', 'p50 c-2/c-1'], rows);

  if (open) reportOpen(open, pooled['cluster-2'] ?? new Timings(), figures);
  console.log(`\nthe whole bench took ${Math.round(elapsedMs / 1000)} s\n`);
  console.log(JSON.stringify({ bench: 'cluster', figures: { ...figures, elapsed_s: Math.round(elapsedMs / 1000) }, ratios, better: 'higher' }));
}

function reportOpen(open: OpenResult, base: Timings, figures: Record<string, unknown>): void {
  const ms = (xs: number[], p: number) => (xs.length ? percentile(xs, p) : NaN);
  const cache = process.env.WORKER_MAX_CACHED_WORKFLOWS ?? 'unset (the SDK sizes it from the heap limit)';
  console.log(
    `\napprovals left open in review on cluster-2, a sample of them read and signed at each checkpoint at concurrency ${CONCURRENCY} ` +
      `(WORKER_MAX_CACHED_WORKFLOWS ${cache}; worker RSS at start ${open.afterStart.join(' + ')} MiB):`,
  );
  const rows = open.checkpoints.map((c) => {
    const read = c.timings.of('GET …/versions/:v');
    const sign = c.timings.of('POST …/decisions');
    return [
      String(c.open),
      c.openedPerSecond.toFixed(2),
      String(sign.length),
      ms(read, 0.5).toFixed(0),
      ms(sign, 0.5).toFixed(0),
      ms(sign, 0.99).toFixed(0),
      (ms(sign, 0.5) / ms(base.of('POST …/decisions'), 0.5)).toFixed(2),
      c.rssOpen.join(' + '),
      c.rssAfterActions.join(' + '),
      c.peak.join(' + '),
    ];
  });
  table(
    ['open runs', 'opened/s', 'signed', 'read p50', 'sign p50', 'sign p99', 'sign p50 / part 1', 'RSS open', 'RSS after', 'peak'],
    rows,
  );
  figures.open = {
    worker_cache: process.env.WORKER_MAX_CACHED_WORKFLOWS ?? null,
    worker_rss_at_start_mib: open.afterStart,
    checkpoints: open.checkpoints.map((c) => ({
      open: c.open,
      opened_per_s: r3(c.openedPerSecond),
      read_p50_ms: r1(ms(c.timings.of('GET …/versions/:v'), 0.5)),
      sign_p50_ms: r1(ms(c.timings.of('POST …/decisions'), 0.5)),
      sign_p99_ms: r1(ms(c.timings.of('POST …/decisions'), 0.99)),
      sign_p50_over_cluster2: r3(ms(c.timings.of('POST …/decisions'), 0.5) / ms(base.of('POST …/decisions'), 0.5)),
      worker_rss_mib: { open: c.rssOpen, after_actions: c.rssAfterActions, peak: c.peak },
    })),
  };
}

if (process.argv.includes(ORCHESTRATE)) {
  // The front process went away without relaying a signal (SIGKILL): stop as after a Ctrl-C.
  process.on('disconnect', () => process.emit('SIGINT'));
  bench.run(main);
}
else void runInOwnProcessGroup(__filename, [ORCHESTRATE]).then((code) => process.exit(code));
