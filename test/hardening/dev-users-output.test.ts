import assert from 'node:assert/strict';
import { devUsersTable } from '../../scripts/lib/dev-users-file';

describe('npm start’s list of development users', () => {
  it('names the users and their roles, never their API keys or signing passwords', () => {
    const table = devUsersTable([
      { username: 'dev.author', roles: ['author'], apiKey: 'lf_abcdef_secret-key-value', password: 'secret-signing-password' } as never,
    ]);
    assert.match(table, /dev\.author\s+author/);
    assert.ok(!table.includes('secret-key-value'));
    assert.ok(!table.includes('secret-signing-password'));
  });
});
