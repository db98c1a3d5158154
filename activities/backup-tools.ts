import { spawn } from 'node:child_process';
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, open, readFile, stat, statfs } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';

/** How pg tools reach a database: the URL without its password (which travels in PGPASSWORD, not argv). */
export interface PgTarget {
  url: string;
  database: string;
  env: Record<string, string>;
}

export function pgTarget(databaseUrl: string, user?: string | null): PgTarget {
  const url = new URL(databaseUrl);
  const password = decodeURIComponent(url.password);
  url.password = '';
  const env: Record<string, string> = password && !user ? { PGPASSWORD: password } : {};
  if (user) url.username = encodeURIComponent(user);
  return { url: url.toString(), database: decodeURIComponent(url.pathname.replace(/^\//, '')), env };
}

export function withDatabase(databaseUrl: string, database: string): string {
  const url = new URL(databaseUrl);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

export class ToolError extends Error {
  constructor(
    readonly tool: string,
    readonly code: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly stderr: string,
  ) {
    super(
      `${tool} ${signal ? `was killed by ${signal}` : `exited with ${code}`}: ${stderr.trim().split('\n').slice(-3).join(' | ') || '(no output)'}`,
    );
  }
}

export interface RunOptions {
  env?: Record<string, string>;
  /** Called with each line of standard output (pg_restore --list); otherwise stdout is discarded. */
  onLine?: (line: string) => void;
  /** Aborting kills the process (an activity's cancellation). */
  signal?: AbortSignal;
}

/** Runs one process to the end; anything but exit code 0 (a non-zero code, a signal) is a ToolError. */
export function runTool(command: string, args: string[], options: RunOptions = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let pending = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-16_384);
    });
    child.stdout.on('data', (chunk: Buffer) => {
      if (!options.onLine) return;
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      lines.forEach(options.onLine);
    });
    const abort = () => child.kill('SIGTERM');
    options.signal?.addEventListener('abort', abort, { once: true });
    child.once('error', (err) => reject(new ToolError(command, null, null, err.message)));
    child.once('close', (code, signal) => {
      options.signal?.removeEventListener('abort', abort);
      if (pending && options.onLine) options.onLine(pending);
      if (code === 0 && !signal) resolve();
      else reject(new ToolError(command, code, signal, stderr));
    });
  });
}

export async function toolOutput(command: string, args: string[], env?: Record<string, string>): Promise<string> {
  const lines: string[] = [];
  await runTool(command, args, { env, onLine: (l) => lines.push(l) });
  return lines.join('\n');
}

/** 'pg_dump (PostgreSQL) 15.20 (Debian …)' → { version: '15.20', major: 15 } */
export function parseToolVersion(text: string): { version: string; major: number } {
  const match = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(text);
  if (!match) throw new Error(`cannot read a PostgreSQL version from ${JSON.stringify(text)}`);
  return { version: match[2] ? `${match[1]}.${match[2]}` : match[1], major: Number(match[1]) };
}

/** Errors that trying again cannot fix: credentials, permissions, a missing database. */
export function isPermanentPgError(stderr: string): boolean {
  return /password authentication failed|authentication failed|role ".*" does not exist|no pg_hba\.conf entry|permission denied|database ".*" does not exist|server version mismatch/i.test(
    stderr,
  );
}

export async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

export async function fileSize(path: string): Promise<number | null> {
  return stat(path).then(
    (s) => s.size,
    () => null,
  );
}

export async function sha256File(path: string, onProgress?: (bytes: number) => void): Promise<string> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
    onProgress?.(bytes);
  }
  return hash.digest('hex');
}

/** Reads a 256-bit key from a file of 64 hex characters. */
export async function readKeyFile(path: string): Promise<{ key: Buffer; fingerprint: string }> {
  const text = (await readFile(path, 'utf8')).trim();
  if (!/^[0-9a-fA-F]{64}$/.test(text)) throw new Error(`${path} does not hold a 256-bit key (64 hex characters)`);
  const key = Buffer.from(text, 'hex');
  return { key, fingerprint: createHash('sha256').update(key).digest('hex').slice(0, 16) };
}

const MAGIC = Buffer.from('LFBK1');
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** AES-256-GCM, streamed: MAGIC | iv | ciphertext | tag. */
export async function encryptFile(src: string, dst: string, key: Buffer): Promise<void> {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const out = createWriteStream(dst);
  out.write(Buffer.concat([MAGIC, iv]));
  await pipeline(createReadStream(src, { highWaterMark: 1 << 20 }), cipher, out, { end: false });
  await new Promise<void>((resolve, reject) => out.end(cipher.getAuthTag(), () => resolve()).once('error', reject));
  const handle = await open(dst, 'r+');
  await handle.sync().finally(() => handle.close());
}

export async function decryptFile(src: string, dst: string, key: Buffer): Promise<void> {
  const size = (await stat(src)).size;
  const handle = await open(src, 'r');
  const head = Buffer.alloc(MAGIC.length + IV_BYTES);
  const tag = Buffer.alloc(TAG_BYTES);
  try {
    await handle.read(head, 0, head.length, 0);
    await handle.read(tag, 0, TAG_BYTES, size - TAG_BYTES);
  } finally {
    await handle.close();
  }
  if (!head.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error(`${src} is not a labflow encrypted backup`);
  const decipher = createDecipheriv('aes-256-gcm', key, head.subarray(MAGIC.length));
  decipher.setAuthTag(tag);
  await pipeline(
    createReadStream(src, { start: head.length, end: size - TAG_BYTES - 1, highWaterMark: 1 << 20 }),
    decipher,
    createWriteStream(dst),
  );
}

/** Copies a file and proves the copy by hashing it where it landed. */
export async function copyAndVerify(src: string, dst: string, expectedSha256: string): Promise<void> {
  await copyFile(src, dst);
  const handle = await open(dst, 'r+');
  await handle.sync().finally(() => handle.close());
  const actual = await sha256File(dst);
  if (actual !== expectedSha256) throw new Error(`the copy at ${dst} hashes to ${actual}, expected ${expectedSha256}`);
}
