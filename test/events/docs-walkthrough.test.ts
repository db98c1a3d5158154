import assert from 'node:assert/strict';
import { docBlock, walkthroughFolder, type WalkthroughFolder } from '../helpers/walkthrough';
import { startWebhookPlatform } from './support';

/**
 * docs/events.md's walk-through, run as written by bash and curl against the real API and worker (with the
 * allowlist `npm start` gives its worker and API), from a folder laid out like a clone: .data/dev-users.json and
 * node_modules.
 */
describe("docs/events.md's walk-through", function () {
  this.timeout(120_000);
  let s: Awaited<ReturnType<typeof startWebhookPlatform>>;
  let folder: WalkthroughFolder;

  before(async () => {
    s = await startWebhookPlatform({ allowedHosts: ['127.0.0.1'] });
    folder = await walkthroughFolder({
      name: 'events',
      usernames: 'as-named-if-free',
      nodeModules: true,
      people: [
        ['admin', ['admin']],
        ['alice.author', ['author']],
        ['rita.reviewer', ['reviewer']],
        ['rick.reviewer', ['reviewer']],
        ['april.approver', ['approver']],
        ['doc.control', ['document_control']],
      ],
    });
  });
  after(async () => {
    await s?.stop();
    await folder?.remove();
  });

  it('runs verbatim: a verifying receiver gets signed task.assigned events, the history pages, a private URL is refused', async () => {
    const stdout = await folder.run(await docBlock('docs/events.md', '## Walk-through with curl'), s.p.baseUrl);
    const deliveries = stdout.split('\n').filter((l) => l.startsWith('{"id"'));
    assert.ok(deliveries.length >= 2, stdout);
    for (const line of deliveries) {
      const d = JSON.parse(line);
      assert.equal(d.verified, true);
      assert.equal(d.body.type, 'task.assigned');
      assert.equal(d.body.data.kind, 'document.review');
    }
    assert.match(stdout, /"items":\[\{"seq":\d+,"id":"[0-9a-f-]{36}","type":"task.assigned"/);
    assert.match(stdout, /"type":"urn:labflow:problem:webhook-url-private-range"/);
    assert.match(stdout, /"previousSecretExpiresAt":"/);
  });

  it('runs the live-updates walk-through verbatim: the event arrives, a reconnection replays the one missed', async () => {
    const stdout = await folder.run(await docBlock('docs/events.md', '### Watch it live with curl'), s.p.baseUrl, 90_000);
    const live = /^id: (\d+)\nevent: task.assigned\ndata: (.*)$/m.exec(stdout);
    assert.ok(live, stdout);
    const replayed = stdout.slice(live.index + live[0].length);
    const again = /^id: (\d+)\nevent: task.assigned\ndata: (.*)$/m.exec(replayed);
    assert.ok(again, stdout);
    assert.ok(Number(again[1]) > Number(live[1]), 'the replay starts after the last event received');
    assert.notEqual(JSON.parse(again[2]).entityId, JSON.parse(live[2]).entityId);
    assert.match(stdout, /"field":"header.last-event-id"/);
  });
});
