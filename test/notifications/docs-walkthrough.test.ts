import assert from 'node:assert/strict';
import { startPlatform, type Platform } from '../helpers/platform';
import { docBlock, walkthroughFolder, type WalkthroughFolder } from '../helpers/walkthrough';

/**
 * docs/notifications.md's walk-through, run as written by bash and curl against the real API (with the Slack URL
 * prefix `npm start` has by default), from a folder laid out like a clone: .data/dev-users.json.
 */
describe("docs/notifications.md's walk-through", function () {
  this.timeout(120_000);
  let p: Platform;
  let folder: WalkthroughFolder;

  before(async () => {
    p = await startPlatform({ withWorker: false });
    folder = await walkthroughFolder({ name: 'notifications', people: [['admin', ['admin']], ['rita.reviewer', ['reviewer']]] });
  });
  after(async () => {
    await p?.stop();
    await folder?.remove();
  });

  it('runs verbatim: Rita sets her channels, bad input is refused, an admin reads them, and back to the defaults', async () => {
    const stdout = await folder.run(await docBlock('docs/notifications.md', '### Walk-through with curl', 'bash'), p.baseUrl);
    const lines = stdout.trim().split('\n');
    assert.equal(lines.length, 7, stdout);
    assert.deepEqual(JSON.parse(lines[0]).channels, ['email', 'in_app']);
    assert.deepEqual(JSON.parse(lines[1]).channels, ['email', 'in_app', 'sms', 'slack']);
    assert.equal(JSON.parse(lines[2]).status, 422);
    assert.equal(JSON.parse(lines[3]).status, 400);
    assert.equal(JSON.parse(lines[4]).phoneNumber, '+41791234567');
    assert.equal(lines[5], '403');
    assert.deepEqual(JSON.parse(lines[6]), { ...JSON.parse(lines[6]), channels: ['email', 'in_app'], slackWebhookSet: false, phoneNumber: null });
  });
});
