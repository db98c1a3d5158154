import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { say } from './say';

const root = join(__dirname, '..', '..');

export interface ServiceExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

export interface Service {
  name: string;
  process: ChildProcess;
  /** Settles once, when the process has ended (or could not be started). */
  exit: Promise<ServiceExit>;
  exited: ServiceExit | null;
  /** SIGTERM, then SIGKILL after `graceMs` if it has not ended by then. */
  stop(graceMs: number): Promise<void>;
}

/**
 * Runs a TypeScript entry point of this repository as a child process, its output prefixed with `[name] ` line by
 * line (JSON log lines stay intact after the prefix).
 *
 * `node --import tsx` rather than `npx tsx`: one process instead of three (npx, the tsx launcher, node), so the
 * signal sent to stop it reaches the program itself and the pid shown is the one that runs.
 */
export function startService(name: string, entry: string, env: NodeJS.ProcessEnv): Service {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  prefixLines(child.stdout, process.stdout, `[${name}] `);
  prefixLines(child.stderr, process.stderr, `[${name}] `);

  const service: Service = {
    name,
    process: child,
    exited: null,
    exit: new Promise<ServiceExit>((resolve) => {
      const settle = (exit: ServiceExit) => {
        if (service.exited) return;
        service.exited = exit;
        resolve(exit);
      };
      child.once('exit', (code, signal) => settle({ code, signal }));
      child.once('error', (error) => settle({ code: null, signal: null, error }));
    }),
    stop: async (graceMs) => {
      if (service.exited) return;
      child.kill('SIGTERM');
      const timer = delay(graceMs);
      const ended = await Promise.race([service.exit.then(() => true), timer.promise.then(() => false)]);
      timer.cancel();
      if (!ended) {
        say(`the ${name} did not stop within ${Math.round(graceMs / 1000)} s; killing it`);
        child.kill('SIGKILL');
        await service.exit;
      }
    },
  };
  return service;
}

export function describeExit(exit: ServiceExit): string {
  if (exit.error) return `could not be started: ${exit.error.message}`;
  if (exit.signal) return `was killed by ${exit.signal}`;
  return `exited with code ${exit.code}`;
}

function prefixLines(from: Readable, to: Writable, prefix: string): void {
  eachLine(from, (line) => to.write(`${prefix}${line}\n`));
}

function eachLine(from: Readable, onLine: (line: string) => void): void {
  createInterface({ input: from, crlfDelay: Infinity }).on('line', onLine);
}

/** Every non-empty line a child writes to stdout or stderr, whole (a line split across chunks arrives once). */
export function forwardLines(child: ChildProcess, onLine: ((line: string) => void) | undefined): void {
  if (!onLine) return;
  for (const stream of [child.stdout, child.stderr]) {
    if (stream) eachLine(stream, (line) => line && onLine(line));
  }
}

function delay(ms: number): { promise: Promise<void>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  return { promise, cancel: () => clearTimeout(timer) };
}
