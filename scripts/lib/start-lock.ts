import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { StartError } from './say';

export interface StartLock {
  path: string;
  release(): void;
}

/**
 * One `npm start` per data directory: a second one would share the SQLite file of the Temporal dev server and the
 * private PostgreSQL cluster with the first. The pid file is taken atomically; one left by a start that was killed
 * is recognised (its process is gone, or is something else now) and taken over.
 */
export function acquireStartLock(dataDir: string): StartLock {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, 'start.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return {
        path,
        release: () => {
          if (readPid(path) === process.pid) rmSync(path, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = readPid(path);
      if (holder !== null && isRunningStart(holder)) {
        throw new StartError(
          `labflow is already running from ${dataDir} (pid ${holder}); stop it first (Ctrl-C in its terminal, or kill -INT ${holder})`,
        );
      }
      rmSync(path, { force: true });
    }
  }
  throw new StartError(`could not take ${path}; another start is racing this one`);
}

function readPid(path: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function isRunningStart(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // A recycled pid belongs to some other program; where /proc exists, tell the two apart.
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('start.ts');
  } catch {
    return true;
  }
}
