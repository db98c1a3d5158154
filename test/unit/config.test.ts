import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../common/config';
import { durationMs, isDuration } from '../../common/durations';

describe('configuration and durations', () => {
  it('reads durations as people write them', () => {
    assert.equal(durationMs('72h'), 72 * 3_600_000);
    assert.equal(durationMs('365d'), 365 * 86_400_000);
    assert.equal(durationMs('1.5s'), 1500);
    assert.equal(durationMs('250ms'), 250);
    assert.equal(isDuration('3 days'), false);
    assert.throws(() => durationMs('soon'), /not a duration/);
  });

  it('fills every setting with its documented default from an empty environment', () => {
    const config = loadConfig({});
    assert.equal(config.DATABASE_URL, 'postgres://postgres@127.0.0.1:5432/labflow');
    assert.equal(config.TEMPORAL_ADDRESS, '127.0.0.1:7233');
    assert.equal(config.API_PORT, 3000);
    assert.equal(config.DOC_STAGE_DUE, '72h');
    assert.equal(config.SCHEDULES, true);
    assert.equal(config.PRIVATE_PG, 'auto');
  });

  it('turns flags and numbers from strings into values, and treats an empty variable as unset', () => {
    const config = loadConfig({ SCHEDULES: 'false', API_PORT: '8080', TEMPORAL_DEV_SERVER: 'never', SMTP_URL: '' });
    assert.equal(config.SCHEDULES, false);
    assert.equal(config.API_PORT, 8080);
    assert.equal(config.TEMPORAL_DEV_SERVER, false);
    assert.equal(config.SMTP_URL, undefined);
  });

  it('refuses a bad value, naming the variable', () => {
    assert.throws(
      () => loadConfig({ API_PORT: 'eighty', DOC_STAGE_DUE: 'three days' }),
      (err: Error) => err instanceof ConfigError && /API_PORT/.test(err.message) && /DOC_STAGE_DUE/.test(err.message),
    );
  });

  it('refuses a zero enrolment token life, key lifetime or failure window, but lets signing passwords stop aging', () => {
    assert.throws(
      () => loadConfig({ ENROLMENT_TOKEN_TTL: '0s', API_KEY_DEFAULT_LIFETIME: '0d', API_KEY_FAILURE_WINDOW: '0m' }),
      (err: Error) =>
        err instanceof ConfigError &&
        ['ENROLMENT_TOKEN_TTL', 'API_KEY_DEFAULT_LIFETIME', 'API_KEY_FAILURE_WINDOW'].every((k) => err.message.includes(k)),
    );
    assert.equal(loadConfig({ SIGNING_PASSWORD_MAX_AGE: '0s' }).SIGNING_PASSWORD_MAX_AGE, '0s');
  });
});
