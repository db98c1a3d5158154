import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pgTarget, runTool } from '../activities/backup-tools';
import { databaseUrlOf } from '../activities/backups';
import type { BackupInput, BackupResult, BackupSettings } from '../common/scheduled-work';
import { startBenchPlatform, type BenchPlatform } from './lib/bench-platform';

/**
 * Backup wall time through the workflow (preflight, pg_dump -Fc, pg_dumpall --globals-only, pg_restore --list,
 * SHA-256, bookkeeping, retention) against a bare `pg_dump -Fc` of the same ≥ 1 GB database in the same run,
 * alternating the two so neither enjoys a warmer cache. The database is generated in the bench's throwaway
 * database and dropped at the end.
 */
const TARGET = 1.15;
const GIB = 1024 ** 3;
const SIZE_BYTES = Number(process.env.BENCH_BACKUP_BYTES ?? 1.05 * GIB);
const ROUNDS = Number(process.env.BENCH_BACKUP_ROUNDS ?? 3);
const say = (line: string) => console.log(`[bench:backup] ${line}`);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function generate(p: BenchPlatform): Promise<number> {
  say(`generating ${(SIZE_BYTES / GIB).toFixed(2)} GiB of sample rows (random text, so compression has real work)`);
  await p.db.raw(`create table bench_results (id bigint primary key, sample_id text not null, analyte text not null,
    value double precision not null, unit text not null, notes text not null, recorded_at timestamptz not null)`);
  const batch = 500_000;
  for (let from = 0; ; from += batch) {
    await p.db.raw(
      `insert into bench_results
       select g, 'S-' || lpad(g::text, 9, '0'), (array['Na','K','Cl','Glu','Crea','Hb','ALT','AST'])[1 + g % 8], random() * 200,
              'mmol/L', md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text),
              now() - (g % 100000) * interval '1 minute'
       from generate_series(?::bigint, ?::bigint) g`,
      [from + 1, from + batch],
    );
    const size = Number((await p.db.raw('select pg_database_size(current_database()) as s')).rows[0].s);
    if (size >= SIZE_BYTES) {
      await p.db.raw('analyze bench_results');
      return size;
    }
  }
}

/** Seconds each activity of a run took, from its history (scheduled → completed). */
async function stepTimes(p: BenchPlatform, workflowId: string): Promise<string> {
  const history = await p.client.workflow.getHandle(workflowId).fetchHistory();
  const scheduled = new Map<string, { type: string; at: number }>();
  const parts: string[] = [];
  const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;
  for (const e of history.events ?? []) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(String(e.eventId), { type: s.activityType?.name ?? '?', at: ms(e.eventTime) });
    const c = e.activityTaskCompletedEventAttributes;
    if (c) {
      const from = scheduled.get(String(c.scheduledEventId));
      if (from) parts.push(`${from.type.replace(/^backup/, '')} ${((ms(e.eventTime) - from.at) / 1000).toFixed(2)}`);
    }
  }
  return parts.join(', ');
}

async function main(): Promise<void> {
  const p = await startBenchPlatform(say);
  const work = await mkdtemp(join(tmpdir(), 'labflow-bench-backup-'));
  const bare: number[] = [];
  const viaWorkflow: number[] = [];
  let dbBytes = 0;
  let dumpBytes = 0;
  try {
    dbBytes = await generate(p);
    say(`database is ${(dbBytes / GIB).toFixed(2)} GiB`);
    const settings: BackupSettings = {
      dir: join(work, 'backups'),
      offsiteDir: null,
      compression: 1,
      encryptionKeyFile: null,
      sizeBandPercent: 50,
      retention: { daily: 7, weekly: 4, monthly: 12 },
      timeZone: 'UTC',
      pgUser: null,
      heartbeatTimeout: '60s',
    };
    const target = pgTarget(databaseUrlOf(p.db));
    say('warm-up: one unmeasured bare dump, so both sides read a warm cache');
    await runTool(
      'pg_dump',
      ['--format=custom', '--compress=1', '--no-password', `--file=${join(work, 'warm.dump')}`, `--dbname=${target.url}`],
      {
        env: target.env,
      },
    );
    await rm(join(work, 'warm.dump'));
    for (let round = 1; round <= ROUNDS; round++) {
      const file = join(work, `bare-${round}.dump`);
      let t = performance.now();
      await runTool('pg_dump', ['--format=custom', '--compress=1', '--no-password', `--file=${file}`, `--dbname=${target.url}`], {
        env: target.env,
      });
      bare.push((performance.now() - t) / 1000);
      dumpBytes = (await stat(file)).size;
      await rm(file);
      say(`round ${round}: bare pg_dump -Fc ${bare.at(-1)!.toFixed(1)} s (${(dumpBytes / 1024 ** 2).toFixed(0)} MiB)`);

      t = performance.now();
      const workflowId = `backup:bench-${round}-${Date.now()}`;
      const result = (await p.client.workflow.execute('backupWorkflow', {
        workflowId,
        taskQueue: p.config.taskQueue,
        args: [{ settings, trigger: 'manual' } satisfies BackupInput],
      })) as BackupResult;
      viaWorkflow.push((performance.now() - t) / 1000);
      say(
        `round ${round}: backup workflow ${viaWorkflow.at(-1)!.toFixed(1)} s (${(result.dumpBytes / 1024 ** 2).toFixed(0)} MiB, verified): ${await stepTimes(p, workflowId)}`,
      );
      await rm(settings.dir, { recursive: true, force: true });
    }
  } finally {
    say('stopping the worker and the dev server; dropping the database');
    await p.stop();
    await rm(work, { recursive: true, force: true });
  }
  const ratio = Math.round((median(viaWorkflow) / median(bare)) * 1000) / 1000;
  console.log(
    `\nbackup: ${(dbBytes / GIB).toFixed(2)} GiB database, ${(dumpBytes / 1024 ** 2).toFixed(0)} MiB dump (-Fc -Z1), ${ROUNDS} rounds alternating`,
  );
  console.log(`bare pg_dump -Fc  median ${median(bare).toFixed(2)} s   (${bare.map((x) => x.toFixed(2)).join(', ')})`);
  console.log(`backup workflow   median ${median(viaWorkflow).toFixed(2)} s   (${viaWorkflow.map((x) => x.toFixed(2)).join(', ')})`);
  console.log(`ratio ${ratio.toFixed(3)} (target ≤ ${TARGET})\n`);
  console.log(
    JSON.stringify({
      bench: 'backup',
      figures: {
        database_bytes: dbBytes,
        dump_bytes: dumpBytes,
        bare_pg_dump_s: Math.round(median(bare) * 100) / 100,
        workflow_backup_s: Math.round(median(viaWorkflow) * 100) / 100,
      },
      ratio,
      target: TARGET,
      better: 'lower',
    }),
  );
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`[bench:backup] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
