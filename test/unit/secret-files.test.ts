import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, SECRET_SETTINGS, secretFileKey } from '../../common/config';

describe('secrets given as files (<NAME>_FILE)', () => {
  let dir: string;
  const file = (name: string, content: string) => {
    const path = join(dir, name);
    writeFileSync(path, content, { mode: 0o600 });
    return path;
  };
  before(() => (dir = mkdtempSync(join(tmpdir(), 'labflow-secrets-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads each secret setting from the file its _FILE variable names, without the final newline', () => {
    for (const key of SECRET_SETTINGS) {
      const value = key.endsWith('_URL') ? `postgres://someone:p%40ss@db.example:5432/${key.toLowerCase()}` : `secret-of-${key}`;
      const config = loadConfig({ [secretFileKey(key)]: file(key, `${value}\n`) });
      assert.equal(config[key], value, key);
    }
  });

  it('gives the database URLs read from files to every role they name', () => {
    const config = loadConfig({
      DATABASE_URL_FILE: file('app-url', 'postgres://labflow_app:a1@postgres:5432/labflow\n'),
      BACKUP_DATABASE_URL_FILE: file('backup-url', 'postgres://labflow_backup:b2@postgres:5432/labflow\n'),
    });
    assert.equal(config.DATABASE_URL, 'postgres://labflow_app:a1@postgres:5432/labflow');
    assert.equal(config.BACKUP_DATABASE_URL, 'postgres://labflow_backup:b2@postgres:5432/labflow');
  });

  it('refuses a secret given both as a value and as a file', () => {
    assert.throws(
      () => loadConfig({ SMTP_URL: 'smtp://relay:25', SMTP_URL_FILE: file('smtp', 'smtp://user:pw@relay:587') }),
      /set SMTP_URL or SMTP_URL_FILE, not both/,
    );
  });

  it('names the variable and the file when the file cannot be read or is empty', () => {
    const missing = join(dir, 'nowhere');
    assert.throws(
      () => loadConfig({ DATABASE_URL_FILE: missing }),
      (err: Error) => {
        assert.match(err.message, /DATABASE_URL_FILE names .*nowhere, which cannot be read \(ENOENT\)/);
        return true;
      },
    );
    assert.throws(() => loadConfig({ ERP_API_SECRET_FILE: file('blank', '\n') }), /ERP_API_SECRET_FILE names .*blank, which is empty/);
    if (process.getuid?.() !== 0) {
      const locked = file('locked', 'x');
      chmodSync(locked, 0o000);
      assert.throws(
        () => loadConfig({ OPENAI_API_KEY_FILE: locked }),
        /OPENAI_API_KEY_FILE names .*locked, which cannot be read \(EACCES\)/,
      );
    }
  });

  it('has no _FILE form for a setting that is not a secret', () => {
    assert.equal(loadConfig({ API_PORT_FILE: file('port', '8080') }).API_PORT, 3000);
  });
});
