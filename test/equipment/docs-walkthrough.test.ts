import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startPlatform, type Platform } from '../helpers/platform';
import { createUser } from '../../db/identity';
import { makeUsers } from '../helpers/users';
import { testEnv } from '../setup/env';

/**
 * docs/equipment.md's walk-through, run as written by bash and curl against the real API and worker, from a folder
 * laid out like a clone under `npm start` (.data/dev-users.json naming the development users it uses).
 */
describe("docs/equipment.md's walk-through", function () {
  this.timeout(150_000);
  let p: Platform;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labflow-equipment-doc-'));
    p = await startPlatform();
    const u = await makeUsers({ qa: ['qa_manager'], tech: ['lab_technician'], director: ['lab_director'] });
    await mkdir(join(dir, '.data'), { recursive: true });
    const dev = (username: string, user: (typeof u)['tech']) => ({ username, apiKey: user.apiKey, password: user.password });
    await writeFile(join(dir, '.data', 'dev-users.json'), JSON.stringify([dev('qa.manager', u.qa), dev('tom.tech', u.tech), dev('dana.director', u.director)]));
    // The certificate names its preparer by the development username, so that user must exist as under `npm start`.
    const { db } = testEnv();
    if (!(await db('users').where({ username: 'tom.tech' }).first())) {
      await createUser(db, { username: 'tom.tech', printedName: 'Tom Brennan', email: 'tom.tech@lab.test', roles: ['lab_technician'], password: 'pw-unused-here' });
    }
  });
  after(async () => {
    await p?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs verbatim from registration through calibration, a failed QC and maintenance to retirement', async () => {
    const doc = await readFile(join(__dirname, '..', '..', 'docs', 'equipment.md'), 'utf8');
    const script = doc.split('## Walk-through with curl')[1].split('```sh\n')[1].split('```')[0];
    const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: dir,
      env: { ...process.env, LABFLOW_URL: p.baseUrl },
      timeout: 120_000,
    });
    assert.match(stdout, /"state":"commissioning"/);
    assert.match(stdout, /urn:labflow:problem:invalid-validity/);
    assert.match(stdout, /urn:labflow:problem:verification-record-required/);
    assert.match(stdout, /"statusLabel":"in service"/);
    assert.match(stdout, /"impactedResults":\[\],"capa":"capa:CAPA-\d{4}-\d+"/);
    assert.match(stdout, /"statusLabel":"out of service: qc_failed"/);
    assert.match(stdout, /cannot return to service: qc_failed, maintenance/);
    assert.match(stdout, /"state":"retired"/);
  });

  it('runs the booking walk-through verbatim: a tiered approval in order, an overlap refused, a check-in too early, a bump by maintenance', async () => {
    const doc = await readFile(join(__dirname, '..', '..', 'docs', 'equipment.md'), 'utf8');
    const script = doc.split('## Walk-through: a booking')[1].split('```sh\n')[1].split('```')[0];
    const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: dir,
      env: { ...process.env, LABFLOW_URL: p.baseUrl },
      timeout: 120_000,
    });
    assert.match(stdout, /^in service$/m);
    assert.match(stdout, /"rule":"tiered"/);
    assert.match(stdout, /urn:labflow:problem:booking-overlap/);
    assert.match(stdout, /awaits tier 1 approval before tier 2/);
    assert.match(stdout, /requested\napproved\n/);
    assert.match(stdout, /may be checked into from/);
    assert.match(stdout, /"bumped":\["booking:/);
    assert.match(stdout, /"state":"bumped","purpose":"Method validation","endedBecause":"maintenance: Lamp replacement"/);
  });
});
