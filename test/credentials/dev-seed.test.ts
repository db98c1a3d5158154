import assert from 'node:assert/strict';
import { checkSigningPassword, credentialForApiKey, toActor } from '../../db/identity';
import { seedDevUsers } from '../../db/seed-dev-users';
import { createScratchDatabase, type ScratchDatabase } from '../helpers/scratch-database';

describe('the development seed under the credential policy', function () {
  this.timeout(60_000);
  let scratch: ScratchDatabase;

  before(async () => {
    scratch = await createScratchDatabase('devseed');
  });
  after(async () => scratch?.drop());

  it('gives npm start users whose known signing passwords sign under the aging policy, with keys that do not expire', async () => {
    const seeded = await seedDevUsers(scratch.db);
    assert.ok(seeded && seeded.length > 0);
    const policy = { maxFailures: 5, failureWindowMs: 60_000, lockMs: 60_000, maxAgeMs: 90 * 86_400_000 };
    for (const user of seeded) {
      const credential = await credentialForApiKey(scratch.db, user.apiKey);
      assert.ok(credential, `${user.username}'s key works`);
      assert.equal(credential.expiresAt, null);
      const check = await checkSigningPassword(scratch.db, toActor(credential.user), user.password, policy, {
        entityType: 'test',
        entityId: 'seed',
      });
      assert.deepEqual(check, { ok: true }, `${user.username} signs with the seeded password`);
    }
  });
});
