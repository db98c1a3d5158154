import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { decryptFile, pgTarget, readKeyFile, runTool, sha256File } from './backup-tools';

export interface RestorableBackup {
  id: string;
  dump_path: string | null;
  stored_sha256: string | null;
  encrypted: boolean;
  key_fingerprint: string | null;
}

/**
 * Restores one backup's dump into an existing, empty database: checks the stored file's hash first, decrypts it
 * next to itself when it is encrypted, and runs pg_restore with --exit-on-error so any error fails the restore.
 * Ownership and grants are not restored (the target's roles may differ); roles are in the globals file.
 */
export async function restoreDump(options: {
  backup: RestorableBackup;
  targetUrl: string;
  keyFile: string | null;
  workDir: string;
  jobs?: number;
}): Promise<void> {
  const { backup } = options;
  if (!backup.dump_path) throw new Error(`backup ${backup.id} has no stored dump`);
  const actual = await sha256File(backup.dump_path);
  if (backup.stored_sha256 && actual !== backup.stored_sha256)
    throw new Error(`${backup.dump_path} hashes to ${actual}, not the recorded ${backup.stored_sha256}`);
  let dumpFile = backup.dump_path;
  let cleanup: string | null = null;
  if (backup.encrypted) {
    if (!options.keyFile) throw new Error(`backup ${backup.id} is encrypted and no key file is configured`);
    const { key, fingerprint } = await readKeyFile(options.keyFile);
    if (backup.key_fingerprint && fingerprint !== backup.key_fingerprint)
      throw new Error(`backup ${backup.id} was encrypted with key ${backup.key_fingerprint}, the configured key is ${fingerprint}`);
    cleanup = dumpFile = join(options.workDir, `${backup.id}.restore-${process.pid}.dump`);
    await decryptFile(backup.dump_path, dumpFile, key);
  }
  try {
    const target = pgTarget(options.targetUrl);
    await runTool(
      'pg_restore',
      [
        '--exit-on-error',
        '--no-owner',
        '--no-privileges',
        '--no-password',
        `--jobs=${options.jobs ?? 1}`,
        `--dbname=${target.url}`,
        dumpFile,
      ],
      { env: target.env },
    );
  } finally {
    if (cleanup) await rm(cleanup, { force: true });
  }
}
