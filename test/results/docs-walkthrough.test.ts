import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers } from '../helpers/users';

/**
 * docs/results.md's walk-through, run as written by bash and curl against the real API and worker, from a folder
 * laid out like a clone under `npm start` (.data/dev-users.json naming the development users it uses).
 */
describe("docs/results.md's walk-through", function () {
  this.timeout(180_000);
  let p: Platform;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labflow-results-doc-'));
    p = await startPlatform();
    const u = await makeUsers({ tech: ['lab_technician'], director: ['lab_director'] });
    await mkdir(join(dir, '.data'), { recursive: true });
    const dev = (username: string, user: (typeof u)['tech']) => ({ username, apiKey: user.apiKey, password: user.password });
    await writeFile(join(dir, '.data', 'dev-users.json'), JSON.stringify([dev('tom.tech', u.tech), dev('dana.director', u.director)]));
  });
  after(async () => {
    await p?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs verbatim from a routed sample to a released result, a retest and a cancellation', async () => {
    const doc = await readFile(join(__dirname, '..', '..', 'docs', 'results.md'), 'utf8');
    const script = doc.split('## Walk-through with curl')[1].split('```sh\n')[1].split('```')[0];
    const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: dir,
      env: { ...process.env, LABFLOW_URL: p.baseUrl },
      timeout: 90_000,
    });
    assert.match(stdout, /urn:labflow:problem:wrong-unit/);
    assert.match(stdout, /"flag":"high"/);
    assert.match(stdout, /"rule":"self-verification"/);
    assert.match(stdout, /"state":"released"/);
    assert.match(stdout, /urn:labflow:problem:analysis-released/);
    assert.match(stdout, /"retestOf":"analysis:ACC-\d+:CMP"/);
    assert.match(stdout, /"state":"cancelled","frozen":false,"reason":"Ordered in error"/);
  });

  it('runs verbatim from a routed sample to a released report and a corrected one, v1 byte-identical', async () => {
    const doc = await readFile(join(__dirname, '..', '..', 'docs', 'results.md'), 'utf8');
    const script = doc.split('### Walk-through with curl: a released report and a corrected one')[1].split('```sh\n')[1].split('```')[0];
    const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: dir,
      env: { ...process.env, LABFLOW_URL: p.baseUrl },
      timeout: 110_000,
    });
    assert.match(stdout, /"state":"verified"/);
    assert.match(stdout, /"workflowId":"report:ACC-\d+:v1"[^\n]*"state":"released"/);
    assert.match(stdout, /urn:labflow:problem:report-released/);
    const printed = /([0-9a-f]{64}) {2}\S+v1\.pdf$/m.exec(stdout)?.[1];
    assert.ok(printed && stdout.includes(`"pdfSha256":"${printed}"`), 'the PDF downloaded is the one released, by its SHA-256');
    assert.match(stdout, /"workflowId":"report:ACC-\d+:v2"[^\n]*"corrects":1/);
    assert.match(stdout, /"corrected":true[^\n]*"correction":\{"version":1,"reason":"Collection time corrected by the ward"\}/);
    assert.match(stdout, /v1 is byte-identical after the correction/);
    assert.match(stdout, /v1 released corrected by v2\nv2 released/);
  });
});
