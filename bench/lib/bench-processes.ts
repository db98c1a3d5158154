import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { startService, type Service } from '../../scripts/lib/child-service';
import { freePort } from '../../scripts/lib/free-port';
import { waitForHttpOk } from '../../scripts/lib/wait-http';
import { spawnWorkerProcess, stopProcess } from '../../scripts/lib/worker-process';

/** The production entry points as processes of their own: N workers and one API process on one task queue. */
export interface BenchProcesses {
  baseUrl: string;
  workers: ChildProcess[];
  api: Service;
  /** The API first (no new work), then the workers together. */
  stop(): Promise<void>;
}

/**
 * `settings` are what both read (database, Temporal, payload and audit keys, task queue, limits); each process
 * gets them over a bare environment (PATH and HOME), as a container would.
 */
export async function startBenchProcesses(workerCount: number, settings: Record<string, string>): Promise<BenchProcesses> {
  const workers: ChildProcess[] = [];
  let api: Service | undefined;
  const stop = async () => {
    await api?.stop(10_000);
    await Promise.all(workers.map((w) => stopProcess(w)));
  };
  try {
    // One after another: each bundles the workflows at start, which is all the CPU this machine has.
    for (let i = 0; i < workerCount; i++) workers.push(await spawnWorkerProcess({ ...settings, SCHEDULES: 'false' }));
    const port = await freePort();
    api = startService('api', 'api/server.ts', {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      LOG_PRETTY: 'false',
      ...settings,
      // Errors only: a line per request would be the bench's output.
      LOG_LEVEL: 'error',
      API_PORT: String(port),
    });
    const baseUrl = `http://127.0.0.1:${port}`;
    await waitForHttpOk(`${baseUrl}/readyz`, { timeoutMs: 120_000, giveUp: () => api!.exited !== null });
    if (api.exited) throw new Error('the API process ended while starting');
    return { baseUrl, workers, api, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Resident memory now and at its peak (VmRSS, VmHWM), in MiB, from /proc. */
export function residentMemory(pid: number): { rssMiB: number; peakMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: Math.round(kib('VmRSS') / 1024), peakMiB: Math.round(kib('VmHWM') / 1024) };
}
