import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createUser } from '../../db/identity';
import { startPlatform, type Platform } from '../helpers/platform';
import { testEnv } from '../setup/env';

/**
 * docs/notifications.md's walk-through, run as written by bash and curl against the real API (with the Slack URL
 * prefix `npm start` has by default), from a folder laid out like a clone: .data/dev-users.json.
 */
describe("docs/notifications.md's walk-through", function () {
  this.timeout(120_000);
  let p: Platform;
  let dir: string;

  before(async () => {
    p = await startPlatform({ withWorker: false });
    dir = await mkdtemp(join(tmpdir(), 'labflow-notifications-doc-'));
    await mkdir(join(dir, '.data'));
    const devUsers = [];
    for (const [username, roles] of [
      ['admin', ['admin']],
      ['rita.reviewer', ['reviewer']],
    ] as const) {
      const name = `${username}.${Date.now()}`;
      const { apiKey } = await createUser(testEnv().db, {
        username: name,
        printedName: username,
        email: `${name}@lab.test`,
        roles: [...roles],
        password: `pw-${name}-long-enough`,
      });
      devUsers.push({ username, apiKey });
    }
    await writeFile(join(dir, '.data', 'dev-users.json'), JSON.stringify(devUsers));
  });
  after(async () => {
    await p?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs verbatim: Rita sets her channels, bad input is refused, an admin reads them, and back to the defaults', async () => {
    const doc = await readFile(join(__dirname, '..', '..', 'docs', 'notifications.md'), 'utf8');
    const script = doc.split('### Walk-through with curl')[1].split('```bash\n')[1].split('```')[0];
    const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: dir,
      env: { ...process.env, LABFLOW_URL: p.baseUrl },
      timeout: 60_000,
    });
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
