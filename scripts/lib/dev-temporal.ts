import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { freePort } from './free-port';
import { forwardLines } from './child-service';

export interface DevTemporalOptions {
  ip?: string;
  /** gRPC port; a free one when absent. */
  port?: number;
  /** Web UI port; no UI when null. */
  uiPort?: number | null;
  /** Persistent SQLite file; in memory when absent. */
  dbFilename?: string;
  /** The codec server the Web UI asks to decode payloads (labflow's `<PUBLIC_URL>/codec`). */
  uiCodecEndpoint?: string;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Where the server's own output goes; ignored when absent. */
  onOutput?: (line: string) => void;
}

export interface DevTemporal {
  address: string;
  uiUrl: string | null;
  process: ChildProcess;
  stop(): Promise<void>;
}

const root = join(__dirname, '..', '..');

/** The Temporal CLI, installed into the per-user cache by scripts/install-temporal.sh when needed. */
export function temporalCli(): string {
  return execFileSync('bash', [join(root, 'scripts', 'install-temporal.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
}

export function searchAttributeFlags(): string[] {
  const attributes = JSON.parse(readFileSync(join(root, 'temporal-config', 'search-attributes.json'), 'utf8')) as Record<string, string>;
  return Object.entries(attributes).flatMap(([name, type]) => ['--search-attribute', `${name}=${type}`]);
}

export async function startDevTemporal(options: DevTemporalOptions = {}): Promise<DevTemporal> {
  const ip = options.ip ?? '127.0.0.1';
  const port = options.port ?? (await freePort(ip));
  const args = ['server', 'start-dev', '--ip', ip, '--port', String(port), '--log-level', options.logLevel ?? 'warn'];
  args.push('--http-port', String(await freePort(ip)), '--metrics-port', String(await freePort(ip)));
  if (options.uiPort === null || options.uiPort === undefined) args.push('--headless');
  else args.push('--ui-port', String(options.uiPort));
  if (options.uiCodecEndpoint && options.uiPort) args.push('--ui-codec-endpoint', options.uiCodecEndpoint);
  if (options.dbFilename) args.push('--db-filename', options.dbFilename);
  args.push(...searchAttributeFlags());
  // One task-queue partition: with a handful of pollers, tasks on other partitions wait to be forwarded, which
  // adds tens of milliseconds to every workflow and activity task on a development server.
  for (const key of ['matching.numTaskqueueReadPartitions', 'matching.numTaskqueueWritePartitions']) {
    args.push('--dynamic-config-value', `${key}=1`);
  }
  // An activity scheduled by a workflow task goes straight back to the worker that completed it.
  args.push('--dynamic-config-value', 'system.enableActivityEagerExecution=true');

  const child = spawn(temporalCli(), args, { stdio: ['ignore', 'pipe', 'pipe'], detached: false });
  forwardLines(child, options.onOutput);
  let exited: number | null = null;
  child.on('exit', (code) => (exited = code ?? -1));

  const address = `${ip}:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited !== null) throw new Error(`temporal dev server exited with code ${exited} (is port ${port} taken?)`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      await connection.workflowService.getSystemInfo({});
      await connection.close();
      break;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`temporal dev server did not answer on ${address}: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  return {
    address,
    uiUrl: options.uiPort ? `http://${ip}:${options.uiPort}` : null,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (exited !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
      }),
  };
}
