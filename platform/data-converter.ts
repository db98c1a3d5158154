import { existsSync, linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApplicationFailure, type DataConverter } from '@temporalio/common';
import type { Context as ActivityContext } from '@temporalio/activity';
import type { ActivityInboundCallsInterceptor, WorkerInterceptors } from '@temporalio/worker';
import type { Config } from '../common/config';
import { isUnencryptedMarker, UNENCRYPTED_PAYLOAD_FAILURE, unencryptedRefusal } from '../common/unencrypted-payload';
import {
  AesGcmPayloadCodec,
  generatePayloadKeys,
  parsePayloadKeys,
  PayloadKeyError,
  type PayloadKeySet,
  type UnencryptedPayloads,
} from './payload-codec';

/** The module the worker, every client and the workflow bundle load the failure converter from. */
export const FAILURE_CONVERTER_PATH = require.resolve('../common/failure-converter');

/**
 * The workflow interceptor modules every workflow bundle carries (bundleWorkflowCode's workflowInterceptorModules,
 * or a worker's interceptors.workflowModules when it bundles itself), replay bundles included.
 */
export const WORKFLOW_INTERCEPTOR_MODULES = [require.resolve('../workflows/lib/unencrypted-payload-guard')];

/**
 * Refuses an activity whose input or heartbeat details arrived unencrypted (a worker's codec marks them): only
 * labflow's runs schedule its activities, so such a task was made by something else polling or scheduling on the
 * task queue. Non-retryable, since a retry would carry the same input.
 */
const refuseUnencryptedActivityInput = (ctx: ActivityContext): ActivityInboundCallsInterceptor => ({
  async execute(input, next) {
    if (input.args.some(isUnencryptedMarker) || isUnencryptedMarker(ctx.info.heartbeatDetails)) {
      throw ApplicationFailure.nonRetryable(unencryptedRefusal("the activity's input"), UNENCRYPTED_PAYLOAD_FAILURE);
    }
    return next(input);
  },
});

/** The worker interceptors that go with a worker's data converter: the workflow and activity guards above. */
export const workerInterceptors = (): WorkerInterceptors => ({
  workflowModules: WORKFLOW_INTERCEPTOR_MODULES,
  activity: [(ctx) => ({ inbound: refuseUnencryptedActivityInput(ctx) })],
});

export interface DataConverterOptions {
  /** PAYLOAD_ALLOW_CLEAR: accept payloads that are not encrypted, during a migration to encryption. */
  allowClear?: boolean;
  /**
   * A worker marks what it refuses, so its runs stay healthy (see UnencryptedPayloads); a client (the API, scripts)
   * refuses with an error.
   */
  side?: 'worker' | 'client';
}

/** The key file `npm start` creates when no key is configured, and which is used when present. */
export const devPayloadKeysFile = (dataDir: string) => join(dataDir, 'payload-keys');

/**
 * Every Temporal client and worker uses this, so what one encrypts the others can read. Without keys, payloads go
 * in clear, but failures are still encoded the same way (see common/failure-converter.ts). With keys, an inbound
 * payload that is not encrypted did not come from labflow and is refused, unless `allowClear`.
 */
export function dataConverterFor(keys: PayloadKeySet | null, options: DataConverterOptions = {}): DataConverter {
  const unencrypted: UnencryptedPayloads = options.allowClear ? 'allow' : options.side === 'worker' ? 'mark' : 'refuse';
  return {
    failureConverterPath: FAILURE_CONVERTER_PATH,
    ...(keys ? { payloadCodecs: [new AesGcmPayloadCodec(keys, unencrypted)] } : {}),
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
