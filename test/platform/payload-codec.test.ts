import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, defaultPayloadConverter, type Payload } from '@temporalio/common';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { createPayloadKeyFile, dataConverterFor, devPayloadKeysFile, loadPayloadKeys } from '../../platform/data-converter';
import {
  AesGcmPayloadCodec,
  ENCRYPTED_ENCODING,
  generatePayloadKeys,
  KEY_ID_METADATA,
  keyIdOf,
  parsePayloadKeys,
  PayloadDecryptionError,
  PayloadKeyError,
} from '../../platform/payload-codec';
import { fetchFixture, replayFixtures, type History } from '../../workers/replay';
import { testEnv } from '../setup/env';
import type { CodecTestActivities } from './codec-workflows';

const text = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? new Uint8Array()).toString('utf8');
const key = () => randomBytes(32).toString('base64');
const json = (value: unknown) => defaultPayloadConverter.toPayload(value) as Payload;

/** Every string and every byte field of a history, as one text to search for something that must not be there. */
function everythingIn(history: History): string {
  const parts = [historyToJSON(history)];
  const walk = (value: unknown): void => {
    if (ArrayBuffer.isView(value)) parts.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('latin1'));
    else if (typeof value === 'string') parts.push(value);
    else if (value && typeof value === 'object') Object.values(value).forEach(walk);
  };
  walk(history);
  return parts.join('\n');
}

/** Every payload of a history (payload lists, single payloads, failures' encoded attributes, headers). */
function payloadsIn(history: History): Payload[] {
  const found: Payload[] = [];
  const walk = (value: unknown): void => {
    if (!value || typeof value !== 'object' || ArrayBuffer.isView(value)) return;
    const candidate = value as Payload;
    if (candidate.metadata && ArrayBuffer.isView(candidate.metadata.encoding)) found.push(candidate);
    else Object.values(value).forEach(walk);
  };
  walk(history);
  return found;
}

describe('the payload codec', () => {
  const keysA = parsePayloadKeys(`2026a:${key()}`);
  const codecA = new AesGcmPayloadCodec(keysA);

  it('round-trips payloads, encrypting each whole payload under the current key with a fresh IV', async () => {
    const original = [
      json({ note: 'calibrate pipette P-7' }),
      json(42),
      { metadata: { encoding: new TextEncoder().encode('binary/null') } },
    ];
    const encoded = await codecA.encode(original);
    assert.equal(encoded.length, 3);
    for (const payload of encoded) {
      assert.equal(text(payload.metadata?.encoding), ENCRYPTED_ENCODING);
      assert.equal(text(payload.metadata?.[KEY_ID_METADATA]), '2026a');
      assert.deepEqual(
        Object.keys(payload.metadata ?? {}).sort(),
        ['encoding', KEY_ID_METADATA].sort(),
        'the inner encoding is hidden too',
      );
    }
    assert.doesNotMatch(text(encoded[0].data), /pipette|json\/plain/);
    const decoded = await codecA.decode(encoded);
    assert.deepEqual(
      decoded.map((p) => defaultPayloadConverter.fromPayload(p)),
      [{ note: 'calibrate pipette P-7' }, 42, undefined],
    );
    const [again] = await codecA.encode([original[0]]);
    assert.notDeepEqual(Buffer.from(again.data!), Buffer.from(encoded[0].data!), 'the same value encrypts differently each time');
  });

  it('passes payloads that are not encrypted through unchanged only when told to (PAYLOAD_ALLOW_CLEAR, the viewer)', async () => {
    const plain = json({ recorded: 'before encryption' });
    const [decoded] = await new AesGcmPayloadCodec(keysA, 'allow').decode([plain]);
    assert.equal(decoded, plain);
    await assert.rejects(codecA.decode([plain]), /arrived unencrypted/, 'refused by default');
  });

  it('keeps decrypting with an old key after a new one becomes current, and encrypts new payloads with the new key', async () => {
    const [old] = await codecA.encode([json('recorded under 2026a')]);
    const rotated = new AesGcmPayloadCodec(parsePayloadKeys(`2026b:${key()},2026a:${Buffer.from(keysA.current.key).toString('base64')}`));
    assert.equal(defaultPayloadConverter.fromPayload((await rotated.decode([old]))[0]), 'recorded under 2026a');
    const [fresh] = await rotated.encode([json('recorded under 2026b')]);
    assert.equal(keyIdOf(fresh), '2026b');
    await assert.rejects(codecA.decode([fresh]), /key ID "2026b"/, 'the old key set cannot read what the new key wrote');
  });

  it('refuses a payload whose key is not configured, naming the key ID and nothing else', async () => {
    const [payload] = await codecA.encode([json('secret note')]);
    const other = new AesGcmPayloadCodec(parsePayloadKeys(`2027:${key()}`));
    await assert.rejects(other.decode([payload]), (err: Error) => {
      assert.ok(err instanceof PayloadDecryptionError);
      assert.match(err.message, /key ID "2026a".*not among the configured payload keys/);
      assert.doesNotMatch(err.message, /secret/);
      return true;
    });
  });

  it('refuses tampered ciphertext, a re-labelled key ID and a truncated payload (GCM authentication)', async () => {
    const [payload] = await codecA.encode([json('dose 5 mg')]);
    const flipped = Buffer.from(payload.data!);
    flipped[20] ^= 0x01;
    await assert.rejects(codecA.decode([{ ...payload, data: flipped }]), /key ID "2026a" failed authentication/);

    const twoKeys = parsePayloadKeys(
      `2026a:${Buffer.from(keysA.current.key).toString('base64')},other:${Buffer.from(keysA.current.key).toString('base64')}`,
    );
    const relabelled = { ...payload, metadata: { ...payload.metadata, [KEY_ID_METADATA]: new TextEncoder().encode('other') } };
    await assert.rejects(new AesGcmPayloadCodec(twoKeys).decode([relabelled]), /failed authentication/);

    await assert.rejects(codecA.decode([{ ...payload, data: payload.data!.subarray(0, 20) }]), /truncated/);
  });

  describe('key configuration', () => {
    it('takes the first key as current and all of them for decryption', () => {
      const keys = parsePayloadKeys(`new:${key()}, old.1:${key()}\nolder_2:${randomBytes(32).toString('base64url')}`);
      assert.equal(keys.current.id, 'new');
      assert.deepEqual([...keys.all.keys()], ['new', 'old.1', 'older_2']);
      assert.match(generatePayloadKeys('x'), /^x:[A-Za-z0-9+/]{43}=$/);
    });

    it('refuses malformed keys with messages that never quote the key material', () => {
      const short = randomBytes(16).toString('base64');
      const cases: [string, RegExp][] = [
        ['', /holds no keys/],
        [short, /entry 1 is not keyId:base64Key/],
        [`k1:${short}`, /entry 1 \(key "k1"\): an AES-256 key is 32 bytes, this one is 16/],
        [`bad id!:${key()}`, /entry 1: the key ID must be 1-64 characters/],
        [`k1:${key()},k1:${key()}`, /entry 2: key ID "k1" appears twice/],
        [`k1:not*base64*at*all`, /entry 1 \(key "k1"\): the key is not base64/],
      ];
      for (const [input, expected] of cases) {
        assert.throws(
          () => parsePayloadKeys(input),
          (err: Error) => {
            assert.ok(err instanceof PayloadKeyError, input);
            assert.match(err.message, expected);
            if (input.includes(':')) assert.ok(!err.message.includes(input.split(':')[1].split(',')[0]), 'the key is not in the message');
            return true;
          },
        );
      }
    });

    it('loads keys from PAYLOAD_KEYS, from PAYLOAD_KEYS_FILE, or from the key file npm start made, and is off without any', () => {
      const dir = mkdtempSync(join(tmpdir(), 'labflow-keys-'));
      assert.equal(loadPayloadKeys({ DATA_DIR: dir }), null);
      assert.equal(loadPayloadKeys({ DATA_DIR: dir, PAYLOAD_KEYS: `env:${key()}` })?.current.id, 'env');

      const file = join(dir, 'keys');
      writeFileSync(file, `# rotated 2026-12-01\nfile-new:${key()}\nfile-old:${key()}\n`, { mode: 0o600 });
      assert.deepEqual([...loadPayloadKeys({ DATA_DIR: dir, PAYLOAD_KEYS_FILE: file })!.all.keys()], ['file-new', 'file-old']);
      assert.throws(
        () => loadPayloadKeys({ DATA_DIR: dir, PAYLOAD_KEYS_FILE: join(dir, 'missing') }),
        /cannot read the payload key file .*ENOENT/,
      );
      assert.throws(() => loadPayloadKeys({ DATA_DIR: dir, PAYLOAD_KEYS: `a:${key()}`, PAYLOAD_KEYS_FILE: file }), /not both/);

      createPayloadKeyFile(devPayloadKeysFile(dir));
      assert.equal(statSync(devPayloadKeysFile(dir)).mode & 0o777, 0o600);
      const made = readFileSync(devPayloadKeysFile(dir), 'utf8');
      assert.ok(loadPayloadKeys({ DATA_DIR: dir }));
      assert.throws(() => createPayloadKeyFile(devPayloadKeysFile(dir)), /EEXIST/);
      assert.equal(readFileSync(devPayloadKeysFile(dir), 'utf8'), made, 'an existing key file is never replaced');
    });
  });

  describe('on a real Temporal server', () => {
    let worker: Worker;
    let running: Promise<void>;
    let raw: Client;
    const taskQueue = `test-codec-${randomBytes(4).toString('hex')}`;
    const activities: CodecTestActivities = {
      echo: async (note) => note,
      explode: async (note) => {
        throw ApplicationFailure.nonRetryable(`cannot process ${note}`, 'TestExplosion');
      },
    };

    before(async () => {
      const env = testEnv();
      worker = await Worker.create({
        connection: env.nativeConnection,
        taskQueue,
        workflowsPath: require.resolve('./codec-workflows'),
        activities,
        dataConverter: env.dataConverter,
      });
      running = worker.run();
      // A client that knows no keys: it sees what the Temporal server stores.
      raw = new Client({ connection: env.client.connection });
    });
    after(async () => {
      worker.shutdown();
      await running;
    });

    it('stores inputs, activity values and results encrypted: the history holds no trace of them', async () => {
      const marker = `PHI-MARKER-${randomBytes(6).toString('hex')}`;
      const workflowId = `codec-test:echo-${randomBytes(4).toString('hex')}`;
      const result = await testEnv().client.workflow.execute('echoWorkflow', { workflowId, taskQueue, args: [{ note: marker }] });
      assert.deepEqual(result, { echoed: marker }, 'clients with the keys read the values back');

      const history = await raw.workflow.getHandle(workflowId).fetchHistory();
      const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
      const input = started?.input?.payloads ?? [];
      assert.equal(input.length, 1);
      assert.equal(text(input[0].metadata?.encoding), ENCRYPTED_ENCODING);
      assert.equal(text(input[0].metadata?.[KEY_ID_METADATA]), 'test-current');
      const payloads = payloadsIn(history);
      assert.ok(payloads.length >= 4, `input, activity input and result, workflow result; found ${payloads.length}`);
      for (const payload of payloads) assert.equal(text(payload.metadata?.encoding), ENCRYPTED_ENCODING);
      assert.ok(!everythingIn(history).includes(marker), 'the marker is nowhere in the stored history');
      assert.ok(!historyToJSON(history).includes(Buffer.from(JSON.stringify({ note: marker })).toString('base64')));

      await assert.rejects(
        raw.workflow.getHandle(workflowId).result(),
        /binary\/encrypted|Unknown encoding/i,
        'without the keys the result is unreadable',
      );
    });

    it('encrypts failure messages and stack traces too', async () => {
      const marker = `PHI-MARKER-${randomBytes(6).toString('hex')}`;
      const workflowId = `codec-test:explode-${randomBytes(4).toString('hex')}`;
      const handle = await testEnv().client.workflow.start('explodingWorkflow', { workflowId, taskQueue, args: [{ note: marker }] });
      const failure = await handle.result().then(
        () => assert.fail('the workflow should fail'),
        (err: unknown) => err,
      );
      assert.ok(failure instanceof WorkflowFailedError);
      const root = failure.cause?.cause;
      assert.ok(root instanceof ApplicationFailure);
      assert.equal(root.message, `cannot process ${marker}`, 'clients with the keys read the failure');
      assert.equal(root.type, 'TestExplosion', 'the failure type stays readable, for the API to map');

      const history = await raw.workflow.getHandle(workflowId).fetchHistory();
      const failedActivity = history.events?.find((e) => e.activityTaskFailedEventAttributes)?.activityTaskFailedEventAttributes;
      assert.ok(failedActivity?.failure);
      assert.equal(failedActivity.failure.message, 'Encoded failure');
      assert.equal(failedActivity.failure.stackTrace, '');
      assert.equal(text(failedActivity.failure.encodedAttributes?.metadata?.encoding), ENCRYPTED_ENCODING);
      assert.ok(!everythingIn(history).includes(marker), 'the marker is nowhere in the stored history, failures included');
    });

    it('replays an encrypted history with the keys, and fetches it decrypted as a fixture', async () => {
      const workflowId = `codec-test:replay-${randomBytes(4).toString('hex')}`;
      await testEnv().client.workflow.execute('echoWorkflow', { workflowId, taskQueue, args: [{ note: 'replayed' }] });
      const history = await raw.workflow.getHandle(workflowId).fetchHistory();
      const workflowsPath = require.resolve('./codec-workflows');

      const [withKeys] = await replayFixtures({ workflowsPath, dataConverter: testEnv().dataConverter }, [{ workflowId, history }]);
      assert.equal(withKeys.error, undefined, withKeys.error?.message);
      const [withoutKeys] = await replayFixtures({ workflowsPath, dataConverter: dataConverterFor(null) }, [{ workflowId, history }]);
      assert.ok(withoutKeys.error, 'without the keys the history cannot be replayed');

      const fixture = await fetchFixture(testEnv().client, workflowId);
      assert.ok(payloadsIn(fixture.history).every((p) => text(p.metadata?.encoding) !== ENCRYPTED_ENCODING));
      assert.match(everythingIn(fixture.history), /replayed/);
      const [decrypted] = await replayFixtures({ workflowsPath, dataConverter: dataConverterFor(null) }, [fixture]);
      assert.equal(decrypted.error, undefined, 'a fetched fixture replays on an installation with other keys');
    });
  });
});
