import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { ErpSyncResult } from '../common/erp-sync';
import { createDb } from '../db/knex';
import { createBenchDatabase } from './lib/bench-database';
import { dataConverterFor } from '../platform/data-converter';
import { generatePayloadKeys, parsePayloadKeys } from '../platform/payload-codec';
import { startDevTemporal } from '../scripts/lib/dev-temporal';
import { spawnWorkerProcess, stopProcess } from '../scripts/lib/worker-process';
import { ErpNextStub } from '../test/helpers/erpnext-stub';

/**
 * bench:erp-sync — 100,000 items synced from the ERPNext-shaped stub through the workflow (worker in its own
 * process, as deployed), against, in the same run and into the same table: one bare batched INSERT per page,
 * COPY FROM STDIN (psql), and row-by-row INSERTs of the same rows (BENCH_ROW_SAMPLE, default every row; a smaller
 * sample gives a rate measured on fewer rows, and the figures say how many). BENCH_ROUNDS rounds of all four, the
 * order rotating from one round to the next so that no path always goes first; medians reported.
 */
const ROWS = Number(process.env.BENCH_ROWS ?? 100_000);
const PAGE = Number(process.env.BENCH_PAGE ?? 10_000);
const ROW_BY_ROW_SAMPLE = Math.min(ROWS, Number(process.env.BENCH_ROW_SAMPLE ?? ROWS));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const TARGET_COPY = 0.25;
const TARGET_ROW_BY_ROW = 50;
const TZ = 'Europe/Berlin';

const say = (line: string) => console.error(`[bench:erp-sync] ${line}`);
const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;

async function main(): Promise<void> {
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    const base = new URL(process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
    base.pathname = `/labflow_bench_${process.pid}_${randomBytes(3).toString('hex')}`;
    const databaseUrl = base.toString();
    say('starting a Temporal dev server, a database and the ERP stub');
    const temporal = await startDevTemporal({ logLevel: 'error' });
    cleanups.push(() => temporal.stop());
    const database = await createBenchDatabase(databaseUrl);
    cleanups.push(() => database.drop());
    const db = createDb(databaseUrl, 4);
    cleanups.push(() => db.destroy());

    const stub = new ErpNextStub();
    await stub.start();
    cleanups.push(() => stub.stop());
    const groups = ['Reagents', 'Consumables', 'Calibration Standards', 'Raw Material'];
    for (let i = 1; i <= ROWS; i++) {
      stub.put('Item', {
        name: `ITM-${String(i).padStart(6, '0')}`,
        item_name: `${groups[i % 4]} ${i}`,
        item_group: groups[i % 4],
        stock_uom: 'Nos',
        inspection_required_before_purchase: i % 4 === 0 ? 1 : 0,
        disabled: 0,
      });
    }
    const rows = [...stub.table('Item').values()].map((d) => ({
      name: d.name,
      item_name: String(d.item_name),
      item_group: String(d.item_group),
      stock_uom: 'Nos',
      inspection_required: d.inspection_required_before_purchase === 1,
      disabled: false,
      docstatus: 0,
      erp_modified: d.modified,
      erp_modified_at: new Date(`${d.modified.replace(' ', 'T').slice(0, 23)}+01:00`).toISOString(),
    }));

    const taskQueue = `bench-erp-${randomBytes(4).toString('hex')}`;
    const payloadKeys = generatePayloadKeys('bench');
    const worker = await spawnWorkerProcess({
      PAYLOAD_KEYS: payloadKeys,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_TASK_QUEUE: taskQueue,
      DATABASE_URL: database.urls.app,
      LOG_LEVEL: 'info',
      ERP_URL: stub.url,
      ERP_API_KEY: stub.apiKey,
      ERP_API_SECRET: stub.apiSecret,
      ERP_TIME_ZONE: TZ,
      ERP_RATE_LIMIT: '1000',
      ERP_PAGE_SIZE: String(PAGE),
    });
    cleanups.push(() => stopProcess(worker));
    const connection = await Connection.connect({ address: temporal.address });
    cleanups.push(() => connection.close());
    const client = new Client({ connection, dataConverter: dataConverterFor(parsePayloadKeys(payloadKeys)) });

    const truncate = () => db.raw('truncate erp_items');
    const countRows = async () => Number((await db('erp_items').count({ n: '*' }))[0].n);

    // Warm-up: a small sync, so the worker's bundle, connections and the JIT are ready, then start from nothing.
    say('warm-up sync');
    await client.workflow.execute('erpSyncWorkflow', {
      workflowId: `erp-sync:warmup-${randomBytes(3).toString('hex')}`,
      taskQueue,
      args: [{ scope: 'items', pageSize: 1000, pagesPerActivity: 2, activitiesPerRun: 1 }],
    });
    await truncate();
    await db.raw('truncate erp_sync_cursors');

    const columns = Object.keys(rows[0]);
    const csv = rows.map((r) => columns.map((c) => `"${String(r[c as keyof typeof r]).replace(/"/g, '""')}"`).join(',')).join('\n') + '\n';
    const timed = async (what: string, fn: () => Promise<unknown>) => {
      await truncate();
      // Each timing starts with the WAL flushed, so none pays for the one before (needs superuser; else skipped).
      await db.raw('checkpoint').catch(() => undefined);
      say(what);
      const start = process.hrtime.bigint();
      await fn();
      return seconds(start);
    };

    const syncAll = async () => {
      await db.raw('truncate erp_sync_cursors');
      const result: ErpSyncResult = await client.workflow.execute('erpSyncWorkflow', {
        workflowId: `erp-sync:bench-${randomBytes(3).toString('hex')}`,
        taskQueue,
        args: [{ scope: 'items', pageSize: PAGE, pagesPerActivity: 50 }],
      });
      if (result.state !== 'completed') throw new Error(`the sync ended ${result.state}`);
    };
    const batchedInsert = async () => {
      for (let i = 0; i < rows.length; i += PAGE) {
        await db.raw(
          `insert into erp_items (${columns.join(', ')}) select * from jsonb_to_recordset(?::jsonb) as x(name text, item_name text,
            item_group text, stock_uom text, inspection_required boolean, disabled boolean, docstatus smallint, erp_modified text,
            erp_modified_at timestamptz)`,
          [JSON.stringify(rows.slice(i, i + PAGE))],
        );
      }
    };
    const copy = () =>
      new Promise<void>((resolve, reject) => {
        const psql = spawn(
          'psql',
          [databaseUrl, '-v', 'ON_ERROR_STOP=1', '-qc', `copy erp_items (${columns.join(', ')}) from stdin with (format csv)`],
          { stdio: ['pipe', 'ignore', 'inherit'] },
        );
        psql.on('error', reject);
        psql.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`psql exited with ${code}`))));
        psql.stdin.end(csv);
      });
    const rowByRow = async () => {
      for (const row of rows.slice(0, ROW_BY_ROW_SAMPLE)) await db('erp_items').insert(row);
    };

    // The machine is shared: each round times all four back to back, so a round's ratios compare like with like,
    // the order rotates so that none always runs first, and the figures reported are the medians over the rounds.
    const rate = (s: number) => ROWS / s;
    const perRound: Record<string, number>[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const paths: [string, () => Promise<number>][] = [
        [
          'workflow',
          async () => {
            const s = await timed(`round ${round}: workflow, ${ROWS} items in pages of ${PAGE}`, syncAll);
            if ((await countRows()) !== ROWS) throw new Error(`the sync stored ${await countRows()} rows`);
            return s;
          },
        ],
        ['batched', () => timed(`round ${round}: bare batched insert`, batchedInsert)],
        [
          'copy',
          async () => {
            const s = await timed(`round ${round}: COPY FROM STDIN`, copy);
            if ((await countRows()) !== ROWS) throw new Error('COPY did not store every row');
            return s;
          },
        ],
        ['rowByRow', () => timed(`round ${round}: row-by-row (${ROW_BY_ROW_SAMPLE} rows)`, rowByRow)],
      ];
      const shift = (round - 1) % paths.length;
      const took: Record<string, number> = {};
      for (const [name, run] of [...paths.slice(shift), ...paths.slice(0, shift)]) took[name] = await run();
      const { workflow: workflowSeconds, batched: batchedSeconds, copy: copySeconds } = took;
      const rowByRowRate = ROW_BY_ROW_SAMPLE / took.rowByRow;
      perRound.push({
        workflow_seconds: +workflowSeconds.toFixed(3),
        workflow_rows_per_s: Math.round(rate(workflowSeconds)),
        batched_insert_rows_per_s: Math.round(rate(batchedSeconds)),
        copy_rows_per_s: Math.round(rate(copySeconds)),
        row_by_row_rows_per_s: Math.round(rowByRowRate),
        ratio_to_copy: +(copySeconds / workflowSeconds).toFixed(3),
        ratio_to_batched_insert: +(batchedSeconds / workflowSeconds).toFixed(3),
        ratio_to_row_by_row: +(rate(workflowSeconds) / rowByRowRate).toFixed(1),
      });
    }
    const median = (key: string) => {
      const values = perRound.map((r) => r[key]).sort((a, b) => a - b);
      const mid = values.length >> 1;
      const m = values.length % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
      return key.endsWith('_per_s') ? Math.round(m) : +m.toFixed(3);
    };
    const medians: Record<string, number> = Object.fromEntries(Object.keys(perRound[0]).map((key) => [key, median(key)]));
    const figures = {
      rows: ROWS,
      row_by_row_rows: ROW_BY_ROW_SAMPLE,
      page_size: PAGE,
      rounds: ROUNDS,
      ...medians,
      target_ratio_to_copy: TARGET_COPY,
      target_ratio_to_row_by_row: TARGET_ROW_BY_ROW,
      per_round: perRound,
    };
    const n = (key: string) => medians[key].toLocaleString('en');
    console.log(`\nerp-sync: ${ROWS} items from the ERPNext stub into erp_items, median of ${ROUNDS} rounds`);
    console.log(`  workflow (HTTP pages → upsert + cursor + audit)  ${n('workflow_rows_per_s')} rows/s  (${medians.workflow_seconds} s)`);
    console.log(`  bare batched insert (${PAGE}/statement)            ${n('batched_insert_rows_per_s')} rows/s`);
    console.log(`  COPY FROM STDIN (psql)                            ${n('copy_rows_per_s')} rows/s`);
    console.log(
      `  row-by-row insert (${ROW_BY_ROW_SAMPLE} rows)${' '.repeat(Math.max(1, 29 - String(ROW_BY_ROW_SAMPLE).length))}${n('row_by_row_rows_per_s')} rows/s`,
    );
    console.log(`  workflow / COPY ${medians.ratio_to_copy} (target ≥ ${TARGET_COPY})`);
    console.log(`  workflow / batched insert ${medians.ratio_to_batched_insert}`);
    console.log(`  workflow / row-by-row ${medians.ratio_to_row_by_row}× (target ≥ ${TARGET_ROW_BY_ROW}×)`);
    for (const [i, r] of perRound.entries())
      console.log(`  round ${i + 1}: ${r.workflow_rows_per_s} rows/s, ÷ COPY ${r.ratio_to_copy}, ÷ row-by-row ${r.ratio_to_row_by_row}×`);
    console.log();
    console.log(JSON.stringify({ bench: 'erp-sync', figures, ratio: medians.ratio_to_copy, target: TARGET_COPY, better: 'higher' }));
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((err) => say(`cleanup: ${(err as Error).message}`));
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`[bench:erp-sync] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
