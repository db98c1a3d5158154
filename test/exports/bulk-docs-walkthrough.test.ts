import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Role } from '../../common/roles';
import { createUser } from '../../db/identity';
import { startPlatform, type Platform } from '../helpers/platform';
import { createScratchDatabase, type ScratchDatabase } from '../helpers/scratch-database';

/**
 * docs/exports.md's bulk walk-through, run as written by bash and curl against the real API and worker, from a
 * folder laid out like a clone (.data/dev-users.json naming the development users it uses).
 */
describe("docs/exports.md's bulk-export walk-through", function () {
  this.timeout(240_000);
  let p: Platform;
  let dir: string;
  // A database of its own: the walk-through exports every CAPA of this year and every sample of this month, which
  // in the shared database would be every other file's too.
  let scratch: ScratchDatabase;

  before(async () => {
    scratch = await createScratchDatabase('bulk_export_doc');
    // The Temporal server is the suite's: CAPA numbers and accessions (and so run IDs) must not repeat another file's.
    const year = new Date().getUTCFullYear();
    // The numbering function creates the year's sequence as its owner; a number taken here is never used.
    await scratch.db.raw('select next_capa_number(?)', [year]);
    await scratch.db.raw(`select setval('capa_number_seq_${year}', ?)`, [8000 + randomInt(1000)]);
    await scratch.db.raw("select setval('sample_accession_seq', ?)", [700_000 + randomInt(200_000)]);
    p = await startPlatform({ db: scratch.db });
    dir = await mkdtemp(join(tmpdir(), 'labflow-bulk-doc-'));
    await mkdir(join(dir, '.data'));
    await symlink(join(__dirname, '..', '..', 'node_modules'), join(dir, 'node_modules'));
    const people: [string, Role[]][] = [
      ['qa.manager', ['qa_manager']],
      ['tom.tech', ['lab_technician']],
      ['carl.clinician', ['clinician']],
    ];
    const devUsers = [];
    for (const [username, roles] of people) {
      const password = `pw-${username}-long-enough`;
      const { apiKey } = await createUser(scratch.db, { username, printedName: username, email: `${username}.${Date.now()}@lab.test`, roles, password });
      devUsers.push({ username, apiKey, password });
    }
    await writeFile(join(dir, '.data', 'dev-users.json'), JSON.stringify(devUsers));
  });
  after(async () => {
    await p?.stop();
    await scratch?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs verbatim: a year of CAPAs as PDF/A, a month of samples as CSV, the refusals', async () => {
    const doc = await readFile(join(__dirname, '..', '..', 'docs', 'exports.md'), 'utf8');
    const script = doc.split('### Bulk exports with curl')[1].split('```sh\n')[1].split('```')[0];
    const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: dir,
      env: { ...process.env, LABFLOW_URL: p.baseUrl },
      timeout: 180_000,
    });
    assert.match(stdout, /"state":"completed","total":1,"done":1/);
    assert.match(stdout, /"download":"\/api\/v1\/bulk-exports\/[0-9a-f-]{36}\/file"/);
    assert.match(stdout, /^%PDF-1\.7$/m);
    assert.match(stdout, /^ACC-\d+,record,Patient MRN$/m);
    assert.match(stdout, /"status":403[^\n]* 403$/m);
    assert.match(stdout, /^ 403$/m);
    const actions = await scratch.db('audit_events').where({ entity_type: 'bulk_export' }).orderBy('seq').pluck('action');
    assert.deepEqual(actions, [
      'bulk_export.started',
      'bulk_export.completed',
      'bulk_export.downloaded',
      'bulk_export.started',
      'bulk_export.completed',
      'bulk_export.downloaded',
      'bulk_export.refused',
      'bulk_export.download_refused',
    ]);
  });
});
