import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers } from '../helpers/users';

/**
 * docs/document-ai.md's pre-check walk-through, run as written by bash and curl against the real API and worker with
 * no provider configured (the rule-based fallback), from a folder laid out like a clone under `npm start`.
 */
describe("docs/document-ai.md's pre-check walk-through", function () {
  this.timeout(120_000);
  let p: Platform;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labflow-precheck-doc-'));
    p = await startPlatform();
    const u = await makeUsers({ author: ['author'], rita: ['reviewer'] });
    await mkdir(join(dir, '.data'), { recursive: true });
    const dev = (username: string, user: (typeof u)['author']) => ({ username, apiKey: user.apiKey, password: user.password });
    await writeFile(join(dir, '.data', 'dev-users.json'), JSON.stringify([dev('alice.author', u.author), dev('rita.reviewer', u.rita)]));
  });
  after(async () => {
    await p?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs verbatim: the checklist, a submitted form, its rule-based findings, the review untouched', async () => {
    const doc = await readFile(join(__dirname, '..', '..', 'docs', 'document-ai.md'), 'utf8');
    const script = doc.split('## Pre-check walk-through')[1].split('```sh\n')[1].split('```')[0];
    const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: dir,
      env: { ...process.env, LABFLOW_URL: p.baseUrl },
      timeout: 90_000,
    });
    assert.match(stdout, /purpose-scope ISO\/IEC 17025:2017 8\.3\.2/);
    assert.match(stdout, /purpose-scope: met "Purpose: the gravimetric calibration of single-channel pipettes\."/);
    assert.match(stdout, /records: unclear null/);
    assert.match(stdout, /^rule_based$/m);
    assert.match(stdout, /^in_review$/m);
  });
});
