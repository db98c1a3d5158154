import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { UNENCRYPTED_MARKER_KEY, UNENCRYPTED_MARKER_VALUE, unencryptedRefusal } from '../common/unencrypted-payload';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';

const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export interface PayloadKey {
  id: string;
  key: Buffer;
}

/** The first key encrypts; every key decrypts what names it, so old runs stay readable after a rotation. */
export interface PayloadKeySet {
  current: PayloadKey;
  all: ReadonlyMap<string, PayloadKey>;
}

export class PayloadKeyError extends Error {}

/** Thrown for a payload that cannot be decrypted; says which key, never what the payload holds. */
export class PayloadDecryptionError extends Error {}

/** Thrown to a client (the API) that receives an unencrypted payload while clear payloads are refused. */
export class UnencryptedPayloadError extends PayloadDecryptionError {
  constructor() {
    super(unencryptedRefusal('a payload'));
  }
}

/**
 * What decode does with a payload that is not encrypted:
 * - `allow`: passes it through (PAYLOAD_ALLOW_CLEAR during a migration, the codec endpoint's viewer, replays of
 *   decoded fixtures);
 * - `refuse`: throws UnencryptedPayloadError (clients: the caller gets the error);
 * - `mark`: replaces it by the marker of common/unencrypted-payload.ts (workers: the run's guards refuse what
 *   carries it and the run stays healthy, where a decode error would fail its workflow task again and again).
 */
export type UnencryptedPayloads = 'allow' | 'refuse' | 'mark';

const MARKER: Payload = {
  metadata: { encoding: utf8.encode('json/plain') },
  data: utf8.encode(JSON.stringify({ [UNENCRYPTED_MARKER_KEY]: UNENCRYPTED_MARKER_VALUE })),
};

/**
 * Parses `keyId:base64Key[,keyId:base64Key...]` (newlines separate entries too, for key files). Messages name the
 * entry's position and key ID, never key material, because they end up in logs.
 */
export function parsePayloadKeys(text: string, source = 'PAYLOAD_KEYS'): PayloadKeySet {
  const entries = text
    .split(/[,\n]/)
    .map((entry) => entry.trim())
    .filter((entry) => entry && !entry.startsWith('#'));
  if (entries.length === 0) throw new PayloadKeyError(`${source} holds no keys; expected keyId:base64Key[,keyId:base64Key...]`);
  const all = new Map<string, PayloadKey>();
  entries.forEach((entry, index) => {
    const where = `${source} entry ${index + 1}`;
    const colon = entry.indexOf(':');
    if (colon < 0) throw new PayloadKeyError(`${where} is not keyId:base64Key`);
    const id = entry.slice(0, colon).trim();
    const encoded = entry.slice(colon + 1).trim();
    if (!KEY_ID.test(id)) {
      throw new PayloadKeyError(`${where}: the key ID must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' or '-'`);
    }
    if (all.has(id)) throw new PayloadKeyError(`${where}: key ID "${id}" appears twice`);
    if (!BASE64.test(encoded) && !BASE64URL.test(encoded)) throw new PayloadKeyError(`${where} (key "${id}"): the key is not base64`);
    const key = Buffer.from(encoded, BASE64.test(encoded) ? 'base64' : 'base64url');
    if (key.length !== KEY_BYTES) {
      throw new PayloadKeyError(`${where} (key "${id}"): an AES-256 key is ${KEY_BYTES} bytes, this one is ${key.length}`);
    }
    all.set(id, { id, key });
  });
  return { current: all.values().next().value as PayloadKey, all };
}

/**
 * A key ID no other installation will choose: the date (so operators can tell keys apart by age) and 64 random
 * bits. Two installations sharing a namespace (or restored into one) must never name different keys alike, or each
 * would try its own key on the other's payloads and fail authentication.
 */
export function newPayloadKeyId(now = new Date()): string {
  return `k${now.toISOString().slice(0, 10).replace(/-/g, '')}-${randomBytes(8).toString('hex')}`;
}

/** A fresh key set with one random key, in the PAYLOAD_KEYS format. */
export function generatePayloadKeys(id = newPayloadKeyId()): string {
  return `${id}:${randomBytes(KEY_BYTES).toString('base64')}`;
}

export function isEncrypted(payload: Payload): boolean {
  const encoding = payload.metadata?.encoding;
  return encoding !== undefined && encoding !== null && fromUtf8.decode(encoding) === ENCRYPTED_ENCODING;
}

/** The key ID an encrypted payload names, or undefined for a payload that is not encrypted. */
export function keyIdOf(payload: Payload): string | undefined {
  if (!isEncrypted(payload)) return undefined;
  const id = payload.metadata?.[KEY_ID_METADATA];
  return id ? fromUtf8.decode(id) : '';
}

/**
 * AES-256-GCM over the whole serialized Payload (metadata included, so the encoding of the value is hidden too),
 * with a random 96-bit IV per payload and the key ID as additional authenticated data: a payload re-labelled with
 * another key ID fails authentication. Data is IV || ciphertext || tag.
 */
export class AesGcmPayloadCodec implements PayloadCodec {
  constructor(
    readonly keys: PayloadKeySet,
    readonly unencrypted: UnencryptedPayloads = 'refuse',
  ) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.encrypt(payload));
  }

  /** Encryption is what shows a payload came from labflow, so one that is not encrypted is taken as `unencrypted` says. */
  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => (isEncrypted(payload) ? this.decrypt(payload) : this.unencryptedPayload(payload)));
  }

  private unencryptedPayload(payload: Payload): Payload {
    if (this.unencrypted === 'allow') return payload;
    if (this.unencrypted === 'mark') return { metadata: { ...MARKER.metadata }, data: MARKER.data };
    throw new UnencryptedPayloadError();
  }

  private encrypt(payload: Payload): Payload {
    const { id, key } = this.keys.current;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(utf8.encode(id));
    const plain = temporal.api.common.v1.Payload.encode(payload).finish();
    const data = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    return {
      metadata: { encoding: utf8.encode(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: utf8.encode(id) },
      data: new Uint8Array(data),
    };
  }

  private decrypt(payload: Payload): Payload {
    const id = keyIdOf(payload) ?? '';
    if (!id) throw new PayloadDecryptionError(`an encrypted payload carries no ${KEY_ID_METADATA}`);
    const entry = this.keys.all.get(id);
    if (!entry) throw new PayloadDecryptionError(`payload encrypted with key ID "${id}", which is not among the configured payload keys`);
    const data = Buffer.from(payload.data ?? new Uint8Array());
    if (data.length < IV_BYTES + TAG_BYTES) throw new PayloadDecryptionError(`payload encrypted with key ID "${id}" is truncated`);
    const decipher = createDecipheriv('aes-256-gcm', entry.key, data.subarray(0, IV_BYTES));
    decipher.setAAD(utf8.encode(id));
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    let plain: Buffer;
    try {
      plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new PayloadDecryptionError(
        `payload encrypted with key ID "${id}" failed authentication: it was altered, or the key is not the one it was encrypted with`,
      );
    }
    return temporal.api.common.v1.Payload.decode(plain);
  }
}
