import assert from 'node:assert/strict';
import { startPlatform, type Platform } from '../helpers/platform';
import { createScratchDatabase, type ScratchDatabase } from '../helpers/scratch-database';
import { docBlock, walkthroughFolder, type WalkthroughFolder } from '../helpers/walkthrough';

/**
 * docs/training.md's walk-through, run as written by bash and curl against the real API and worker, from a folder
 * laid out like a clone: .data/dev-users.json (the development users it names) and node_modules.
 */
describe("docs/training.md's walk-through", function () {
  this.timeout(240_000);
  let p: Platform;
  let folder: WalkthroughFolder;
  // A database of its own: the walk-through names its people by their development usernames, and the gate and the
  // training matrix judge every user of a role, so no other test file's users may be in it.
  let scratch: ScratchDatabase;

  before(async () => {
    scratch = await createScratchDatabase('training_doc');
    // The Temporal server is the suite's: document numbers (and so run IDs) must not repeat another file's.
    await scratch.db.raw("select setval('document_number_seq', ?)", [9000 + Math.floor(Math.random() * 900)]);
    p = await startPlatform({ db: scratch.db });
    folder = await walkthroughFolder({
      name: 'training',
      db: scratch.db,
      usernames: 'as-named',
      nodeModules: true,
      people: [
        ['doc.control', ['document_control']],
        ['rita.reviewer', ['reviewer']],
        ['alice.author', ['author']],
        ['tom.tech', ['lab_technician']],
        ['april.approver', ['approver']],
        ['qa.manager', ['qa_manager']],
        ['dana.director', ['lab_director']],
      ],
    });
  });
  after(async () => {
    await p?.stop();
    await scratch?.drop();
    await folder?.remove();
  });

  it('runs verbatim: the gate refuses an untrained reviewer, nobody signs for her, she signs and reviews', async () => {
    const stdout = await folder.run(await docBlock('docs/training.md', '## Walk-through with curl'), p.baseUrl, 200_000);
    assert.match(stdout, /"roles":\["reviewer","lab_technician"\],"due":"14d","grace":"until_due"/);
    assert.match(stdout, /"state":"assigned"/);
    assert.match(stdout, /"status":403,"type":"urn:labflow:problem:gate-refused","missing":\[\{"kind":"training"/);
    assert.match(stdout, /"status":403,"type":"urn:labflow:problem:not-assignee"/);
    assert.match(stdout, /"state":"completed"/);
    assert.match(stdout, /"in_review"\n/);
  });

  it('runs the competence walk-through verbatim: assessed, authorised with a signature, refused a second grant, revoked', async () => {
    const stdout = await folder.run(await docBlock('docs/training.md', '## Competence and authorisation'), p.baseUrl);
    assert.match(stdout, /\{"activity":"result.verify","competency":true,"authorisation":true\}/);
    assert.match(stdout, /\{"outcome":"competent","nextDueAt":"\d{4}-/);
    assert.match(stdout, /\{"status":409,"type":"urn:labflow:problem:authorisation-standing"\}/);
    assert.match(stdout, /\{"state":"active","grantedBy":"dana.director","signature":"authorisation"\}/);
    assert.match(stdout, /\{"assessments":\["competent"\],"authorisations":\["active"\]\}/);
    assert.match(stdout, /\{"state":"revoked","endReason":"moved to the microbiology bench"\}/);
    assert.match(stdout, /\{"status":409,"type":"urn:labflow:problem:authorisation-ended"\}/);
    assert.match(stdout, /\{"activity":"result.verify","competency":false,"authorisation":false\}/);
  });
});
