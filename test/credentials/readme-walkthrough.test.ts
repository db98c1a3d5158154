import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMailer } from '../../activities/mailer';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers } from '../helpers/users';
import { docBlock, runScript } from '../helpers/walkthrough';
import { testEnv } from '../setup/env';

/**
 * The README's credentials walk-through, run as written by bash and curl against the real API and worker, from a
 * folder laid out like a clone under `npm start` (.data/dev-users.json, emails as .eml files in .data/outbox).
 */
describe("the README's credentials walk-through", function () {
  this.timeout(120_000);
  let p: Platform;
  let dir: string;
  let mailer: ReturnType<typeof createMailer>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labflow-readme-'));
    mailer = createMailer({ from: 'labflow <labflow@localhost>', outboxDir: join(dir, '.data', 'outbox') });
    p = await startPlatform({ activityDeps: { mailer } });
    const { admin } = await makeUsers({ admin: ['admin'] });
    await mkdir(join(dir, '.data'), { recursive: true });
    await writeFile(join(dir, '.data', 'dev-users.json'), JSON.stringify([{ username: 'admin', apiKey: admin.apiKey }]));
  });
  after(async () => {
    await p?.stop();
    mailer?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs verbatim: enrolment, a refused common password, a change, key rotation and revocation, a reset', async () => {
    const stdout = await runScript(await docBlock('README.md', '## Credentials: enrolment, signing passwords and API keys'), {
      cwd: dir,
      baseUrl: p.baseUrl,
      timeoutMs: 60_000,
    });
    assert.match(stdout, /"signingPassword":"set"/);
    assert.match(stdout, /urn:labflow:problem:password-common/);
    assert.match(stdout, /"rule":"password-common"\}204\n/, 'the change after the refusal answers 204');
    assert.match(stdout, /"name":"balance-03".*"previous":\{[^}]*"state":"active"/s);
    assert.match(stdout, /"state":"revoked"/);
    assert.match(stdout, /"emailedTo":"nina\.\d+@labflow\.local"/);
    const nina = await testEnv().db('users').where('username', 'like', 'nina.%').orderBy('created_at', 'desc').first('id', 'password_hash');
    assert.equal(nina.password_hash, null, 'the reset took the password away');
  });
});
