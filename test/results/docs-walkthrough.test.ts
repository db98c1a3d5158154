import assert from 'node:assert/strict';
import { startPlatform, type Platform } from '../helpers/platform';
import { docBlock, walkthroughFolder, type WalkthroughFolder } from '../helpers/walkthrough';

/**
 * docs/results.md's walk-throughs, run as written by bash and curl against the real API and worker, from a folder
 * laid out like a clone under `npm start` (.data/dev-users.json naming the development users they use).
 */
describe("docs/results.md's walk-through", function () {
  this.timeout(180_000);
  let p: Platform;
  let folder: WalkthroughFolder;

  before(async () => {
    p = await startPlatform();
    folder = await walkthroughFolder({
      name: 'results',
      people: [
        ['tom.tech', ['lab_technician']],
        ['dana.director', ['lab_director']],
      ],
    });
  });
  after(async () => {
    await p?.stop();
    await folder?.remove();
  });

  it('runs verbatim from a routed sample to a released result, a retest and a cancellation', async () => {
    const stdout = await folder.run(await docBlock('docs/results.md', '## Walk-through with curl'), p.baseUrl, 90_000);
    assert.match(stdout, /urn:labflow:problem:wrong-unit/);
    assert.match(stdout, /"flag":"high"/);
    assert.match(stdout, /"rule":"self-verification"/);
    assert.match(stdout, /"state":"released"/);
    assert.match(stdout, /urn:labflow:problem:analysis-released/);
    assert.match(stdout, /"retestOf":"analysis:ACC-\d+:CMP"/);
    assert.match(stdout, /"state":"cancelled","frozen":false,"reason":"Ordered in error"/);
  });

  it('runs verbatim from a routed sample to a released report and a corrected one, v1 byte-identical', async () => {
    const script = await docBlock('docs/results.md', '### Walk-through with curl: a released report and a corrected one');
    const stdout = await folder.run(script, p.baseUrl, 110_000);
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
