import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { canBind } from './ports';
import { say, StartError } from './say';

export interface PrivatePostgresOptions {
  /** The cluster's data directory, created by initdb the first time. */
  dataDir: string;
  logFile: string;
  port: number;
}

export interface PrivatePostgres {
  port: number;
  dataDir: string;
  /** A connection URL for one database of this cluster (trust authentication, user postgres). */
  url(database: string): string;
  stop(): Promise<void>;
}

interface PostgresTools {
  initdb: string;
  pgCtl: string;
}

/** Whom the cluster runs as: initdb and postgres refuse to run as root, so root hands them to the postgres user. */
interface ClusterOwner {
  name: string;
  uid: number;
  gid: number;
}

/** initdb and pg_ctl from PATH, else from the newest Debian-style /usr/lib/postgresql/<major>/bin. */
export function findPostgresTools(): PostgresTools | null {
  const onPath = (name: string) => {
    try {
      return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || null;
    } catch {
      return null;
    }
  };
  const initdb = onPath('initdb');
  const pgCtl = onPath('pg_ctl');
  if (initdb && pgCtl) return { initdb, pgCtl };
  const debian = '/usr/lib/postgresql';
  const majors = existsSync(debian)
    ? readdirSync(debian)
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  for (const major of majors) {
    const bin = join(debian, major, 'bin');
    if (existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'pg_ctl')))
      return { initdb: join(bin, 'initdb'), pgCtl: join(bin, 'pg_ctl') };
  }
  return null;
}

/** Starts the private cluster (creating it the first time), or adopts it when a killed start left it running. */
export async function startPrivatePostgres(options: PrivatePostgresOptions): Promise<PrivatePostgres> {
  const tools = findPostgresTools();
  if (!tools) throw new StartError('initdb/pg_ctl not found: install PostgreSQL, or point DATABASE_URL at a running server');
  const dataDir = resolve(options.dataDir);
  const logFile = resolve(options.logFile);
  const owner = clusterOwner();

  if (!existsSync(join(dataDir, 'PG_VERSION'))) await initCluster(tools, dataDir, owner);

  let port = options.port;
  const runningPort = await runningClusterPort(tools, dataDir, owner);
  if (runningPort !== null) {
    port = runningPort;
    say(`PostgreSQL: the private cluster is already running on port ${port} (left by an earlier start); using it`);
  } else {
    if (!(await canBind('127.0.0.1', port))) {
      throw new StartError(`PRIVATE_PG_PORT ${port} is in use by another program; free it or choose another PRIVATE_PG_PORT`);
    }
    const socketDir = socketDirectory(dataDir);
    prepareForOwner(owner, { dirs: [socketDir], files: [logFile] });
    // pg_ctl hands -o to a shell; the quotes keep a socket path with spaces in one piece.
    const serverOptions = `-p ${port} -k '${socketDir}' -c listen_addresses=127.0.0.1`;
    say(`PostgreSQL: starting the private cluster on 127.0.0.1:${port} (log: ${options.logFile})`);
    await run(tools.pgCtl, ['-D', dataDir, '-o', serverOptions, '-l', logFile, '-w', '-t', '60', 'start'], owner, () => tail(logFile));
  }

  return {
    port,
    dataDir,
    url: (database) => `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(database)}`,
    stop: async () => {
      await run(tools.pgCtl, ['-D', dataDir, '-m', 'fast', '-w', '-t', '60', 'stop'], owner);
    },
  };
}

/**
 * initdb writes into a scratch directory that is renamed into place only when complete, so an interrupted first
 * start leaves nothing that looks like a cluster.
 */
async function initCluster(tools: PostgresTools, dataDir: string, owner: ClusterOwner | null): Promise<void> {
  if (existsSync(dataDir)) {
    if (readdirSync(dataDir).length > 0) {
      throw new StartError(`${dataDir} exists but holds no PostgreSQL cluster; move it away and start again`);
    }
    rmSync(dataDir, { recursive: true });
  }
  const scratch = `${dataDir}.initdb-tmp`;
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true, mode: 0o700 });
  if (owner) chownSync(scratch, owner.uid, owner.gid);
  say(`PostgreSQL: creating the private cluster in ${dataDir} (first time only)`);
  await run(tools.initdb, ['-D', scratch, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C'], owner);
  renameSync(scratch, dataDir);
}

/** The port of the cluster's running postmaster (line 4 of postmaster.pid), or null when it is not running. */
async function runningClusterPort(tools: PostgresTools, dataDir: string, owner: ClusterOwner | null): Promise<number | null> {
  try {
    await run(tools.pgCtl, ['-D', dataDir, 'status'], owner);
  } catch {
    return null; // exit code 3: not running
  }
  const port = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[3]);
  return Number.isInteger(port) && port > 0 ? port : null;
}

function clusterOwner(): ClusterOwner | null {
  if (process.getuid?.() !== 0) return null;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { name: 'postgres', uid, gid };
  } catch {
    throw new StartError('running as root: PostgreSQL refuses root and there is no "postgres" user to run the private cluster as');
  }
}

/** Unix socket paths are limited to ~107 bytes; a deep DATA_DIR falls back to a short directory under the temp dir. */
function socketDirectory(dataDir: string): string {
  const preferred = join(dirname(dataDir), 'pg-socket');
  if (Buffer.byteLength(preferred) + '/.s.PGSQL.65535'.length < 100 && !preferred.includes("'")) return preferred;
  return join(tmpdir(), `labflow-pg-${createHash('sha256').update(dataDir).digest('hex').slice(0, 12)}`);
}

function prepareForOwner(owner: ClusterOwner | null, paths: { dirs: string[]; files: string[] }): void {
  for (const dir of paths.dirs) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (owner) chownSync(dir, owner.uid, owner.gid);
  }
  for (const file of paths.files) {
    closeSync(openSync(file, 'a', 0o600));
    if (owner) chownSync(file, owner.uid, owner.gid);
  }
}

function run(command: string, args: string[], owner: ClusterOwner | null, moreOnFailure?: () => string): Promise<string> {
  return new Promise((done, fail) => {
    execFile(
      command,
      args,
      // The cwd must be readable by the owner: PostgreSQL's tools check it even though every path here is absolute.
      { uid: owner?.uid, gid: owner?.gid, cwd: tmpdir(), encoding: 'utf8', timeout: 120_000 },
      (err, stdout, stderr) => {
        if (!err) return done(stdout);
        const rootHint = owner
          ? `\n(running as the ${owner.name} user: it must be able to reach every directory on the way to DATA_DIR)`
          : '';
        const extra = moreOnFailure?.() ?? '';
        fail(new StartError(`${command} ${args.join(' ')} failed:\n${`${stdout}${stderr}`.trim()}${extra ? `\n${extra}` : ''}${rootHint}`));
      },
    );
  });
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
