import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPayloadKeyFile, loadPayloadKeys } from '../../platform/data-converter';
import { AesGcmPayloadCodec, generatePayloadKeys, newPayloadKeyId, parsePayloadKeys } from '../../platform/payload-codec';

describe('payload key IDs', () => {
  it('are unique even when made on the same day, and stay valid key IDs', () => {
    const day = new Date('2026-12-06T10:00:00Z');
    const ids = Array.from({ length: 1000 }, () => newPayloadKeyId(day));
    assert.equal(new Set(ids).size, ids.length);
    for (const id of ids) assert.match(id, /^k20261206-[0-9a-f]{16}$/);
    // Whatever the generator names, the parser accepts.
    assert.equal(parsePayloadKeys(generatePayloadKeys()).current.id.length, 'k20261206-'.length + 16);
  });

  it('differ between two installations that create their key files on the same day', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'labflow-keys-'));
    try {
      createPayloadKeyFile(join(dir, 'first'));
      createPayloadKeyFile(join(dir, 'second'));
      const first = loadPayloadKeys({ PAYLOAD_KEYS_FILE: join(dir, 'first'), DATA_DIR: dir })!;
      const second = loadPayloadKeys({ PAYLOAD_KEYS_FILE: join(dir, 'second'), DATA_DIR: dir })!;
      assert.notEqual(first.current.id, second.current.id);
      // So the second installation's codec says the payload is not its key's, instead of failing authentication
      // under a key ID it believes it holds.
      const [encrypted] = await new AesGcmPayloadCodec(first).encode([{ metadata: {}, data: new Uint8Array([1, 2, 3]) }]);
      await assert.rejects(new AesGcmPayloadCodec(second).decode([encrypted]), /not among the configured payload keys/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
