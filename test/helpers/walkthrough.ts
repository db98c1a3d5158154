import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Role } from '../../common/roles';
import { createUser } from '../../db/identity';
import type { Db } from '../../db/knex';
import { testEnv } from '../setup/env';

const root = join(__dirname, '..', '..');

/**
 * How a walk-through's development usernames become real users: `as-named` in a database of the test's own (the
 * walk-through may look people up by username); `unique` in the shared database (a suffix, so files never
 * collide); `as-named-if-free` takes the name when no other file has.
 */
export type UsernameMode = 'as-named' | 'unique' | 'as-named-if-free';

export interface WalkthroughPerson {
  username: string;
  apiKey: string;
  password: string;
}

export interface WalkthroughFolder {
  /** A folder laid out like a clone under `npm start`: `.data/dev-users.json` (and `node_modules` when asked). */
  dir: string;
  people: Record<string, WalkthroughPerson>;
  /** Runs a script as a reader would, with bash and curl, in the folder, against the API at `baseUrl`. */
  run(script: string, baseUrl: string, timeoutMs?: number): Promise<string>;
  remove(): Promise<void>;
}

export async function walkthroughFolder(options: {
  name: string;
  people: [string, Role[]][];
  db?: Db;
  usernames?: UsernameMode;
  nodeModules?: boolean;
}): Promise<WalkthroughFolder> {
  const db = options.db ?? testEnv().db;
  const mode = options.usernames ?? 'unique';
  const dir = await mkdtemp(join(tmpdir(), `labflow-${options.name}-doc-`));
  await mkdir(join(dir, '.data'));
  if (options.nodeModules) await symlink(join(root, 'node_modules'), join(dir, 'node_modules'));
  const people: Record<string, WalkthroughPerson> = {};
  for (const [username, roles] of options.people) {
    const taken = mode === 'as-named-if-free' && (await db('users').where({ username }).first());
    const real = mode === 'as-named' || (mode === 'as-named-if-free' && !taken) ? username : `${username}.${randomBytes(3).toString('hex')}`;
    const password = `pw-${real}-long-enough`;
    const { apiKey } = await createUser(db, { username: real, printedName: username, email: `${real}.${Date.now()}@lab.test`, roles, password });
    people[username] = { username, apiKey, password };
  }
  await writeFile(join(dir, '.data', 'dev-users.json'), JSON.stringify(Object.values(people)));
  return {
    dir,
    people,
    run: (script, baseUrl, timeoutMs = 60_000) => runScript(script, { cwd: dir, baseUrl, timeoutMs }),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** The first fenced block (```sh by default) after a heading of a file in the repository, exactly as written. */
export async function docBlock(file: string, heading: string, fence = 'sh'): Promise<string> {
  const text = await readFile(join(root, file), 'utf8');
  const after = text.split(heading)[1];
  if (after === undefined) throw new Error(`${file} has no heading ${heading}`);
  const block = after.split(`\`\`\`${fence}\n`)[1];
  if (block === undefined) throw new Error(`${file} has no \`\`\`${fence} block after ${heading}`);
  return block.split('```')[0];
}

export async function runScript(script: string, options: { cwd: string; baseUrl: string; timeoutMs: number }): Promise<string> {
  const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', script], {
    cwd: options.cwd,
    env: { ...process.env, LABFLOW_URL: options.baseUrl },
    timeout: options.timeoutMs,
  });
  return stdout;
}
