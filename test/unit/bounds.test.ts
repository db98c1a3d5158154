import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../common/config';
import { MAX_DURATION_MS, dateProblem, durationMs, durationProblem, isDuration, parseDuration } from '../../common/durations';

describe('bounds on durations and dates', () => {
  it('refuses a duration over ten years, however many digits it has, without overflowing', () => {
    assert.equal(durationProblem('3650d'), null);
    assert.match(durationProblem('3651d') ?? '', /at most 3650d \(10 years\)/);
    assert.match(durationProblem('999999999d') ?? '', /at most 3650d/);
    assert.match(durationProblem(`${'9'.repeat(400)}d`) ?? '', /at most 3650d/);
    assert.equal(parseDuration(`${'9'.repeat(400)}d`), null, 'not Infinity');
    assert.equal(parseDuration('3650d'), MAX_DURATION_MS);
    assert.equal(isDuration('999999999d'), false);
  });

  it('refuses zero unless asked to allow it, and applies a floor and a ceiling', () => {
    assert.match(durationProblem('0s') ?? '', /longer than zero/);
    assert.equal(durationProblem('0s', { allowZero: true }), null);
    assert.match(durationProblem('500ms', { min: '1s' }) ?? '', /at least 1s/);
    assert.match(durationProblem('8d', { max: '7d' }) ?? '', /at most 7d/);
    assert.equal(durationProblem('7d', { max: '7d' }), null);
  });

  it('keeps the arithmetic recorded runs replay with', () => {
    assert.equal(durationMs('999999999d'), 999999999 * 86_400_000);
  });

  it('accepts dates from 1900 to a century ahead', () => {
    const now = Date.parse('2026-12-06T00:00:00Z');
    assert.equal(dateProblem('1900-01-01T00:00:00Z', now), null);
    assert.match(dateProblem('1899-12-31T23:59:59Z', now) ?? '', /before 1900/);
    assert.equal(dateProblem('2126-12-06T00:00:00Z', now), null);
    assert.match(dateProblem('2126-12-06T00:00:01Z', now) ?? '', /100 years ahead/);
  });

  it('refuses a configured duration over ten years, and allows zero there', () => {
    assert.throws(
      () => loadConfig({ DOC_PERIODIC_REVIEW: '999999999d' }),
      (err: Error) => err instanceof ConfigError && /DOC_PERIODIC_REVIEW/.test(err.message),
    );
    assert.equal(loadConfig({ API_KEY_CACHE_TTL: '0s' }).API_KEY_CACHE_TTL, '0s');
  });
});
