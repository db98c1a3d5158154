import assert from 'node:assert/strict';
import { startPlatform, type Platform } from '../helpers/platform';
import { docBlock, walkthroughFolder, type WalkthroughFolder } from '../helpers/walkthrough';

/**
 * docs/equipment.md's walk-throughs, run as written by bash and curl against the real API and worker, from a folder
 * laid out like a clone under `npm start` (.data/dev-users.json naming the development users they use).
 */
describe("docs/equipment.md's walk-through", function () {
  this.timeout(150_000);
  let p: Platform;
  let folder: WalkthroughFolder;

  before(async () => {
    p = await startPlatform();
    // The certificate names its preparer by the development username ("preparedBy":"tom.tech"), so that user must
    // exist as under `npm start`: the names are taken when no other file has taken them (then that file's tom.tech,
    // a lab technician too, is the one named).
    folder = await walkthroughFolder({
      name: 'equipment',
      usernames: 'as-named-if-free',
      people: [
        ['qa.manager', ['qa_manager']],
        ['tom.tech', ['lab_technician']],
        ['dana.director', ['lab_director']],
      ],
    });
  });
  after(async () => {
    await p?.stop();
    await folder?.remove();
  });

  it('runs verbatim from registration through calibration, a failed QC and maintenance to retirement', async () => {
    const stdout = await folder.run(await docBlock('docs/equipment.md', '## Walk-through with curl'), p.baseUrl, 120_000);
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
    const stdout = await folder.run(await docBlock('docs/equipment.md', '## Walk-through: a booking'), p.baseUrl, 120_000);
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
