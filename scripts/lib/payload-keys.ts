import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Config } from '../../common/config';
import { createPayloadKeyFile, devPayloadKeysFile, loadPayloadKeys } from '../../platform/data-converter';
import { PayloadKeyError } from '../../platform/payload-codec';
import { say, StartError } from './say';

/**
 * `npm start` encrypts payloads like production does: with the keys the user configured, else with a key file under
 * DATA_DIR, made once. Returns what the worker and the API need in their environment to use the same keys.
 */
export function providePayloadKeys(config: Config): Record<string, string> {
  const configured = Boolean(config.PAYLOAD_KEYS || config.PAYLOAD_KEYS_FILE);
  const file = resolve(devPayloadKeysFile(config.DATA_DIR));
  try {
    if (!configured && !existsSync(file)) {
      createPayloadKeyFile(file);
      say(`payload encryption: created a key in ${file} (mode 0600); keep it, runs recorded with it cannot be read without it`);
    }
    const keys = loadPayloadKeys(configured ? config : { ...config, PAYLOAD_KEYS_FILE: file })!;
    say(
      `payload encryption: on, with key "${keys.current.id}"${keys.all.size > 1 ? ` (${keys.all.size - 1} older key(s) still decrypt)` : ''}`,
    );
  } catch (err) {
    if (err instanceof PayloadKeyError) throw new StartError(err.message);
    throw err;
  }
  return configured ? {} : { PAYLOAD_KEYS_FILE: file };
}
