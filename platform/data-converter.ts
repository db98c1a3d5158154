import { existsSync, linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DataConverter } from '@temporalio/common';
import type { Config } from '../common/config';
import { AesGcmPayloadCodec, generatePayloadKeys, parsePayloadKeys, PayloadKeyError, type PayloadKeySet } from './payload-codec';

/** The module the worker, every client and the workflow bundle load the failure converter from. */
export const FAILURE_CONVERTER_PATH = require.resolve('../common/failure-converter');

/** The key file `npm start` creates when no key is configured, and which is used when present. */
export const devPayloadKeysFile = (dataDir: string) => join(dataDir, 'payload-keys');

/**
 * Every Temporal client and worker uses this, so what one encrypts the others can read. Without keys, payloads go
 * in clear, but failures are still encoded the same way (see common/failure-converter.ts).
 */
export function dataConverterFor(keys: PayloadKeySet | null): DataConverter {
  return {
    failureConverterPath: FAILURE_CONVERTER_PATH,
    ...(keys ? { payloadCodecs: [new AesGcmPayloadCodec(keys)] } : {}),
  };
}

/**
 * PAYLOAD_KEYS, else the file PAYLOAD_KEYS_FILE names, else the key file `npm start` created under DATA_DIR, else
 * none (payloads in clear).
 */
export function loadPayloadKeys(config: Pick<Config, 'PAYLOAD_KEYS' | 'PAYLOAD_KEYS_FILE' | 'DATA_DIR'>): PayloadKeySet | null {
  if (config.PAYLOAD_KEYS && config.PAYLOAD_KEYS_FILE) {
    throw new PayloadKeyError('set PAYLOAD_KEYS or PAYLOAD_KEYS_FILE, not both');
  }
  if (config.PAYLOAD_KEYS) return parsePayloadKeys(config.PAYLOAD_KEYS, 'PAYLOAD_KEYS');
  const file = config.PAYLOAD_KEYS_FILE ?? devPayloadKeysFile(config.DATA_DIR);
  if (!config.PAYLOAD_KEYS_FILE && !existsSync(file)) return null;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PayloadKeyError(`cannot read the payload key file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parsePayloadKeys(text, file);
}

/**
 * Writes a key file with one fresh random key, readable only by its owner. Written aside and linked into place, so
 * it is never seen half-written, and an existing key file (which old runs need) is never replaced.
 */
export function createPayloadKeyFile(file: string): void {
  const scratch = `${file}.${process.pid}.tmp`;
  writeFileSync(scratch, `${generatePayloadKeys()}\n`, { mode: 0o600 });
  try {
    linkSync(scratch, file);
  } finally {
    rmSync(scratch, { force: true });
  }
}
