import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Role } from '../../common/roles';
import { createUser } from '../../db/identity';
import { testEnv } from '../setup/env';
import { startWebhookPlatform } from './support';

/**
 * docs/events.md's walk-through, run as written by bash and curl against the real API and worker (with the
 * allowlist `npm start` gives its worker and API), from a folder laid out like a clone: .data/dev-users.json and
 * node_modules.
 */
describe("docs/events.md's walk-through", function () {
  this.timeout(120_000);
  let s: Awaited<ReturnType<typeof startWebhookPlatform>>;
  let dir: string;

  before(async () => {
    s = await startWebhookPlatform({ allowedHosts: ['127.0.0.1'] });
    dir = await mkdtemp(join(tmpdir(), 'labflow-events-doc-'));
    await mkdir(join(dir, '.data'));
    await symlink(join(__dirname, '..', '..', 'node_modules'), join(dir, 'node_modules'));
    const people: [string, Role[]][] = [
      ['admin', ['admin']],
      ['alice.author', ['author']],
      ['rita.reviewer', ['reviewer']],
      ['rick.reviewer', ['reviewer']],
      ['april.approver', ['approver']],
      ['doc.control', ['document_control']],
    ];
    const devUsers = [];
    for (const [username, roles] of people) {
      const existing = await testEnv().db('users').where({ username }).first();
      const name = existing ? `${username}.${Date.now()}` : username;
      const { apiKey } = await createUser(testEnv().db, {
        username: name,
        printedName: username,
        email: `${name}@lab.test`,
        roles,
        password: `pw-${name}-long-enough`,
      });
      devUsers.push({ username, apiKey });
    }
    await writeFile(join(dir, '.data', 'dev-users.json'), JSON.stringify(devUsers));
  });
  after(async () => {
    await s?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs verbatim: a verifying receiver gets signed task.assigned events, the history pages, a private URL is refused', async () => {
    const doc = await readFile(join(__dirname, '..', '..', 'docs', 'events.md'), 'utf8');
    const script = doc.split('## Walk-through with curl')[1].split('```sh\n')[1].split('```')[0];
    const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: dir,
      env: { ...process.env, LABFLOW_URL: s.p.baseUrl },
      timeout: 60_000,
    });
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
    const doc = await readFile(join(__dirname, '..', '..', 'docs', 'events.md'), 'utf8');
    const script = doc.split('### Watch it live with curl')[1].split('```sh\n')[1].split('```')[0];
    const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: dir,
      env: { ...process.env, LABFLOW_URL: s.p.baseUrl },
      timeout: 90_000,
    });
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
