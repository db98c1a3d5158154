import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { startPlatform, type Platform } from '../helpers/platform';
import { createScratchDatabase, type ScratchDatabase } from '../helpers/scratch-database';
import { docBlock, walkthroughFolder, type WalkthroughFolder } from '../helpers/walkthrough';

/**
 * docs/exports.md's bulk walk-through, run as written by bash and curl against the real API and worker, from a
 * folder laid out like a clone (.data/dev-users.json naming the development users it uses, and node_modules).
 */
describe("docs/exports.md's bulk-export walk-through", function () {
  this.timeout(240_000);
  let p: Platform;
  let folder: WalkthroughFolder;
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
    folder = await walkthroughFolder({
      name: 'bulk',
      db: scratch.db,
      usernames: 'as-named',
      nodeModules: true,
      people: [
        ['qa.manager', ['qa_manager']],
        ['tom.tech', ['lab_technician']],
        ['carl.clinician', ['clinician']],
      ],
    });
  });
  after(async () => {
    await p?.stop();
    await scratch?.drop();
    await folder?.remove();
  });

  it('runs verbatim: a year of CAPAs as PDF/A, a month of samples as CSV, the refusals', async () => {
    const stdout = await folder.run(await docBlock('docs/exports.md', '### Bulk exports with curl'), p.baseUrl, 180_000);
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
