import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../common/config';

/** The chain key and where the chain is anchored. The database never sees the key; only labflow's processes do. */
export interface AuditChainSettings {
  key: Buffer;
  /** Names the key without revealing it, so a checkpoint made with another key is told apart from a forged one. */
  keyId: string;
  /** Where checkpoints are written and read: next to the backups, and next to their off-site copies. */
  checkpointDirs: string[];
}

export class AuditChainKeyError extends Error {}

export const GENESIS_LINK = '0'.repeat(64);
const CHECKPOINT_FORMAT = 'labflow.audit-checkpoint.v1';
const CHECKPOINT_FILE = /^audit-checkpoint-(\d{8}T\d{9}Z)-(\d+)\.json$/;

export function devAuditChainKeyFile(dataDir: string): string {
  return join(dataDir, 'audit-chain-key');
}

/**
 * The chain settings from configuration: AUDIT_CHAIN_KEY_FILE, else the key file `npm start` created under
 * DATA_DIR, else none (the chain is then checked by its unkeyed hashes only, and nothing is sealed or anchored).
 */
export function auditChainFromConfig(
  config: Pick<Config, 'AUDIT_CHAIN_KEY_FILE' | 'DATA_DIR' | 'BACKUP_DIR' | 'BACKUP_OFFSITE_DIR'>,
): AuditChainSettings | null {
  const file = config.AUDIT_CHAIN_KEY_FILE ?? devAuditChainKeyFile(config.DATA_DIR);
  if (!config.AUDIT_CHAIN_KEY_FILE && !existsSync(file)) return null;
  const dirs = [config.BACKUP_DIR, config.BACKUP_OFFSITE_DIR].filter((d): d is string => Boolean(d));
  return auditChainSettings(
    readAuditChainKey(file),
    dirs.map((d) => join(resolve(d), 'audit-checkpoints')),
  );
}

export function auditChainSettings(key: Buffer, checkpointDirs: string[]): AuditChainSettings {
  return { key, keyId: createHmac('sha256', key).update('labflow.audit.key-id').digest('hex').slice(0, 16), checkpointDirs };
}

/** A key readable by others is not a secret any more; refusing it is kinder than a chain anyone could forge. */
export function readAuditChainKey(file: string): Buffer {
  let text: string;
  try {
    if ((statSync(file).mode & 0o077) !== 0) {
      throw new AuditChainKeyError(`the audit chain key file ${file} is readable by others: chmod 600 it`);
    }
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    if (err instanceof AuditChainKeyError) throw err;
    throw new AuditChainKeyError(
      `cannot read the audit chain key file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  if (!/^[0-9a-f]{64}$/i.test(text))
    throw new AuditChainKeyError(`the audit chain key file ${file} must hold 64 hex characters (256 bits)`);
  return Buffer.from(text, 'hex');
}

/** A fresh random key, readable only by its owner; an existing key (which the chain's seals need) is never replaced. */
export function createAuditChainKeyFile(file: string): void {
  const scratch = `${file}.${process.pid}.tmp`;
  writeFileSync(scratch, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  try {
    linkSync(scratch, file);
  } finally {
    rmSync(scratch, { force: true });
  }
}

/** The keyed link of one event: it commits to the event's database hash and, through the previous link, to all before it. */
export function chainLink(key: Buffer, seq: number, hash: string, prevLink: string): string {
  return createHmac('sha256', key).update(`labflow.audit.link.v1|${seq}|${hash}|${prevLink}`).digest('hex');
}

export interface AuditCheckpoint {
  format: typeof CHECKPOINT_FORMAT;
  keyId: string;
  headSeq: number;
  headHash: string;
  headLink: string;
  events: number;
  /** ISO-8601 UTC. */
  at: string;
}

export interface SignedCheckpoint extends AuditCheckpoint {
  signature: string;
}

/** Fixed field order, so the signed bytes do not depend on how a file was parsed. */
function checkpointBytes(c: AuditCheckpoint): string {
  return JSON.stringify([c.format, c.keyId, c.headSeq, c.headHash, c.headLink, c.events, c.at]);
}

function checkpointSignature(key: Buffer, c: AuditCheckpoint): string {
  const signingKey = createHmac('sha256', key).update('labflow.audit.checkpoint.v1').digest();
  return createHmac('sha256', signingKey).update(checkpointBytes(c)).digest('hex');
}

function fileStamp(at: string): string {
  return at.replace(/[-:.]/g, '');
}

/**
 * Writes a signed checkpoint into every checkpoint directory (aside, then renamed into place, so a reader never
 * sees half a file). Returns the primary file's path.
 */
export function writeCheckpoint(
  chain: AuditChainSettings,
  head: { seq: number; hash: string; link: string },
  at: Date,
): { file: string; checkpoint: SignedCheckpoint } {
  const body: AuditCheckpoint = {
    format: CHECKPOINT_FORMAT,
    keyId: chain.keyId,
    headSeq: head.seq,
    headHash: head.hash,
    headLink: head.link,
    events: head.seq,
    at: at.toISOString(),
  };
  const checkpoint: SignedCheckpoint = { ...body, signature: checkpointSignature(chain.key, body) };
  const name = `audit-checkpoint-${fileStamp(body.at)}-${head.seq}.json`;
  const files = chain.checkpointDirs.map((dir) => {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, name);
    const scratch = `${file}.${process.pid}.tmp`;
    writeFileSync(scratch, `${JSON.stringify(checkpoint, null, 2)}\n`, { mode: 0o600 });
    renameSync(scratch, file);
    return file;
  });
  return { file: files[0], checkpoint };
}

export type CheckpointRead =
  { kind: 'none' } | { kind: 'ok'; file: string; checkpoint: SignedCheckpoint } | { kind: 'refused'; file: string; reason: string };

/**
 * The newest checkpoint in any of the directories (newest by the time in its name), optionally the newest taken at
 * or before `notAfter`. The newest one is never skipped for an older one: a checkpoint that does not verify is
 * refused, since silently falling back would let whoever can write the directory roll the anchor back.
 */
export function readNewestCheckpoint(chain: AuditChainSettings, notAfter?: Date): CheckpointRead {
  const limit = notAfter ? fileStamp(notAfter.toISOString()) : null;
  let newest: { file: string; stamp: string; seq: number } | null = null;
  for (const dir of chain.checkpointDirs) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue;
      return { kind: 'refused', file: dir, reason: `the checkpoint directory cannot be read (${code ?? (err as Error).message})` };
    }
    for (const name of names) {
      const m = CHECKPOINT_FILE.exec(name);
      if (!m || (limit && m[1] > limit)) continue;
      const seq = Number(m[2]);
      if (!newest || m[1] > newest.stamp || (m[1] === newest.stamp && seq > newest.seq))
        newest = { file: join(dir, name), stamp: m[1], seq };
    }
  }
  if (!newest) return { kind: 'none' };
  return checkCheckpointFile(chain, newest.file, newest.stamp, newest.seq);
}

function checkCheckpointFile(chain: AuditChainSettings, file: string, stamp: string, seq: number): CheckpointRead {
  const refused = (reason: string): CheckpointRead => ({ kind: 'refused', file, reason });
  let parsed: Partial<SignedCheckpoint>;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<SignedCheckpoint>;
  } catch (err) {
    return refused(`it cannot be read as a checkpoint (${(err as Error).message.slice(0, 200)})`);
  }
  const c = parsed as SignedCheckpoint;
  const shaped =
    c.format === CHECKPOINT_FORMAT &&
    typeof c.keyId === 'string' &&
    Number.isSafeInteger(c.headSeq) &&
    typeof c.headHash === 'string' &&
    typeof c.headLink === 'string' &&
    Number.isSafeInteger(c.events) &&
    typeof c.at === 'string' &&
    typeof c.signature === 'string' &&
    /^[0-9a-f]{64}$/.test(c.signature);
  if (!shaped) return refused('it is not a labflow audit checkpoint');
  if (c.keyId !== chain.keyId) return refused(`it was signed with another chain key (${c.keyId}, this one is ${chain.keyId})`);
  const expected = Buffer.from(checkpointSignature(chain.key, c), 'hex');
  if (!timingSafeEqual(expected, Buffer.from(c.signature, 'hex'))) return refused('its signature does not verify: it was altered');
  // A valid checkpoint copied under a newer name would otherwise pass for a newer anchor.
  if (fileStamp(c.at) !== stamp || c.headSeq !== seq) return refused('its name does not match its signed time and head');
  return { kind: 'ok', file, checkpoint: c };
}
