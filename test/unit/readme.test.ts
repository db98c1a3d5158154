import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_KEYS, loadConfig, SECRET_SETTINGS } from '../../common/config';

describe('the README', () => {
  const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
  const rows = new Map(
    [...readme.matchAll(/^\| `([A-Z_]+)` \| ([^|]+) \|/gm)].map(([, key, value]) => [key, value.trim().replace(/^`|`$/g, '')]),
  );

  it('documents every environment variable the config module reads, and no other', () => {
    assert.deepEqual([...rows.keys()].sort(), [...CONFIG_KEYS].sort());
  });

  it('marks exactly the secrets that may be given as files', () => {
    const marked = [...readme.matchAll(/^\| `([A-Z_]+)` \|.*secret, also as `([A-Z_]+)` \|$/gm)].map(([, key, fileKey]) => {
      assert.equal(fileKey, `${key}_FILE`, key);
      return key;
    });
    assert.deepEqual(marked.sort(), [...SECRET_SETTINGS].sort());
  });

  it('states the defaults the config module really uses', () => {
    const defaults = loadConfig({});
    for (const key of CONFIG_KEYS) {
      const actual = defaults[key];
      if (actual === undefined) continue;
      assert.equal(rows.get(key), String(actual), `${key}: README says ${rows.get(key)}, config uses ${String(actual)}`);
    }
  });

  it('keeps the quick start to the two commands', () => {
    const quickStart = readme.split('## Quick start')[1].split('```')[1];
    assert.deepEqual(
      quickStart
        .trim()
        .split('\n')
        .map((line) => line.split('#')[0].trim())
        .filter(Boolean),
      ['sh', 'npm start', 'npm test'],
    );
  });
});
