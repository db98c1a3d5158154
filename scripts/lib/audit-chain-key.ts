import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Config } from '../../common/config';
import { auditChainFromConfig, AuditChainKeyError, createAuditChainKeyFile, devAuditChainKeyFile } from '../../db/audit-chain';
import { say, StartError } from './say';

/**
 * `npm start` keys the audit chain like production does: with the key file the user configured, else with one under
 * DATA_DIR, made once. Returns what the worker and the API need in their environment to use the same key.
 */
export function provideAuditChainKey(config: Config): Record<string, string> {
  const file = resolve(config.AUDIT_CHAIN_KEY_FILE ?? devAuditChainKeyFile(config.DATA_DIR));
  try {
    if (!config.AUDIT_CHAIN_KEY_FILE && !existsSync(file)) {
      mkdirSync(dirname(file), { recursive: true });
      createAuditChainKeyFile(file);
      say(`audit chain: created a key in ${file} (mode 0600); keep it apart from the database and its backups`);
    }
    const chain = auditChainFromConfig({ ...config, AUDIT_CHAIN_KEY_FILE: file })!;
    say(`audit chain: keyed (key ${chain.keyId}), checkpoints in ${chain.checkpointDirs.join(', ')}`);
  } catch (err) {
    if (err instanceof AuditChainKeyError) throw new StartError(err.message);
    throw err;
  }
  return { AUDIT_CHAIN_KEY_FILE: file };
}
