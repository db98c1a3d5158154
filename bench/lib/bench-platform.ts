import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import pino from 'pino';
import { createApp } from '../../api/app';
import { createAuthenticator } from '../../api/auth';
import { apiConfig } from '../../api/config';
import type { ApiConfig } from '../../api/deps';
import { loadConfig } from '../../common/config';
import { createDb, type Db } from '../../db/knex';
import { createBenchDatabase } from './bench-database';
import { dataConverterFor } from '../../platform/data-converter';
import { REDACTED_PATHS } from '../../platform/logger';
import { generatePayloadKeys, parsePayloadKeys } from '../../platform/payload-codec';
import { startDevTemporal } from '../../scripts/lib/dev-temporal';
import { spawnWorkerProcess, stopProcess } from '../../scripts/lib/worker-process';

/** Everything a bench needs, brought up like the tests do, and torn down by stop(). */
export interface BenchPlatform {
  /** The Client the API uses; raw measurements go through the very same one. */
  client: Client;
  /** The database the bench itself reads and writes (fixtures); the API and the worker have their own pools. */
  db: Db;
  config: ApiConfig;
  baseUrl: string;
  /** The same API without rate limits, security headers and CORS (the hardening), for weighing what they cost. */
  bareBaseUrl: string;
  stop(): Promise<void>;
}

function settled<T extends readonly unknown[]>(results: { [K in keyof T]: PromiseSettledResult<T[K]> }): T {
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

export interface BenchPlatformOptions {
  /**
   * Settings (as environment variables) the API's configuration and the worker process both read, as they would
   * from one production environment; e.g. the LLM providers pointed at local stubs.
   */
  settings?: Record<string, string>;
}

export async function startBenchPlatform(say: (line: string) => void, options: BenchPlatformOptions = {}): Promise<BenchPlatform> {
  const cleanups: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((err) => say(`cleanup: ${(err as Error).message}`));
    cleanups.length = 0;
  };
  try {
    const base = new URL(process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
    base.pathname = `/labflow_bench_${process.pid}_${randomBytes(3).toString('hex')}`;
    const databaseUrl = base.toString();

    say('starting a Temporal dev server and creating a database');
    // allSettled, so that whatever did come up is registered for cleanup before a failure is thrown.
    const [temporal, database] = settled(
      await Promise.allSettled([
        startDevTemporal({ logLevel: 'error' }).then((server) => (cleanups.push(() => server.stop()), server)),
        createBenchDatabase(databaseUrl).then((created) => (cleanups.push(() => created.drop()), created)),
      ]),
    );

    // Production defaults (pool size, key cache TTL, body limit), unless the bench sets them.
    const defaults = loadConfig(options.settings ?? {});
    const config: ApiConfig = { ...apiConfig(defaults), taskQueue: `bench-${randomBytes(4).toString('hex')}` };
    const db = createDb(databaseUrl, defaults.DATABASE_POOL_MAX);
    // The API runs as the application role, as in production; db is the bench's own hand for fixtures.
    const apiDb = createDb(database.urls.app, defaults.DATABASE_POOL_MAX);
    cleanups.push(() => Promise.all([db.destroy(), apiDb.destroy()]));

    // Payloads encrypted, as in production, by the API's client and the worker alike.
    const payloadKeys = generatePayloadKeys('bench');
    const dataConverter = dataConverterFor(parsePayloadKeys(payloadKeys));
    const connection = await Connection.connect({ address: temporal.address });
    cleanups.push(() => connection.close());
    const client = new Client({ connection, dataConverter });

    // The worker runs as its own process, as it does in production, so it does not share the API's event loop.
    const dataDir = await mkdtemp(join(tmpdir(), 'labflow-bench-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const worker = await spawnWorkerProcess({
      ...options.settings,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_TASK_QUEUE: config.taskQueue,
      DATABASE_URL: database.urls.app,
      BACKUP_DATABASE_URL: database.urls.backup,
      DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
      PAYLOAD_KEYS: payloadKeys,
    });
    cleanups.push(() => stopProcess(worker));

    // The API logs one line per request at info, as in production; the lines go to /dev/null instead of stdout.
    const level = process.env.BENCH_LOG_LEVEL ?? 'info';
    const log = pino({ name: 'api', level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, pino.destination('/dev/null'));
    const listen = async (hardening: boolean) => {
      const app = createApp({
        db: apiDb,
        temporal: client,
        config,
        log,
        authenticate: createAuthenticator(apiDb, config.apiKeyCacheTtlMs),
        payloadCodec: dataConverter.payloadCodecs?.[0],
        hardening,
      });
      const server: Server = await new Promise((resolve) => {
        const s = app.listen(0, '127.0.0.1', () => resolve(s));
      });
      cleanups.push(
        () =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      );
      return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    };
    const baseUrl = await listen(true);
    const bareBaseUrl = await listen(false);
    return { client, db, config, baseUrl, bareBaseUrl, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
