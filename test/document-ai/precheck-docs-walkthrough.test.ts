import assert from 'node:assert/strict';
import { startPlatform, type Platform } from '../helpers/platform';
import { docBlock, walkthroughFolder, type WalkthroughFolder } from '../helpers/walkthrough';

/**
 * docs/document-ai.md's pre-check walk-through, run as written by bash and curl against the real API and worker with
 * no provider configured (the rule-based fallback), from a folder laid out like a clone under `npm start`.
 */
describe("docs/document-ai.md's pre-check walk-through", function () {
  this.timeout(120_000);
  let p: Platform;
  let folder: WalkthroughFolder;

  before(async () => {
    p = await startPlatform();
    folder = await walkthroughFolder({
      name: 'precheck',
      people: [
        ['alice.author', ['author']],
        ['rita.reviewer', ['reviewer']],
      ],
    });
  });
  after(async () => {
    await p?.stop();
    await folder?.remove();
  });

  it('runs verbatim: the checklist, a submitted form, its rule-based findings, the review untouched', async () => {
    const stdout = await folder.run(await docBlock('docs/document-ai.md', '## Pre-check walk-through'), p.baseUrl, 90_000);
    assert.match(stdout, /purpose-scope ISO\/IEC 17025:2017 8\.3\.2/);
    assert.match(stdout, /purpose-scope: met "Purpose: the gravimetric calibration of single-channel pipettes\."/);
    assert.match(stdout, /records: unclear null/);
    assert.match(stdout, /^rule_based$/m);
    assert.match(stdout, /^in_review$/m);
  });
});
