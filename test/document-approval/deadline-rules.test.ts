import assert from 'node:assert/strict';
import {
  nextPeriodicReviewAt,
  nextStageAlarm,
  openedStageClock,
  stageClock,
  untilEffectiveMs,
  untilPeriodicReviewMs,
} from '../../workflows/document-approval/deadlines';

const t0 = Date.parse('2026-03-02T09:00:00.000Z');
const HOUR = 3_600_000;

describe('document approval deadlines', () => {
  it('gives a stage its due date from when it opened, with the reminder armed when it falls after the opening', () => {
    assert.deepEqual(openedStageClock(t0, '72h', '24h'), { dueAt: '2026-03-05T09:00:00.000Z', reminded: false, escalated: false });
    // A 2 h stage with a 24 h reminder: the reminder would be due before the stage opened, so none is sent.
    assert.equal(openedStageClock(t0, '2h', '24h').reminded, true);
    // Exactly at the opening counts as already due.
    assert.equal(openedStageClock(t0, '24h', '24h').reminded, true);
  });

  it('re-arms the reminder and clears the escalation when a due date moves later', () => {
    const extended = stageClock(t0 + 80 * HOUR, t0 + 200 * HOUR, '24h');
    assert.deepEqual(extended, { dueAt: new Date(t0 + 200 * HOUR).toISOString(), reminded: false, escalated: false });
    assert.equal(stageClock(t0, t0 + 10 * HOUR, '24h').reminded, true, 'a new date closer than the reminder lead: no reminder');
  });

  it('sleeps until the reminder, reminds, sleeps until the due date, escalates, then waits for people alone', () => {
    const clock = openedStageClock(t0, '72h', '24h');
    assert.deepEqual(nextStageAlarm(clock, '24h', t0), { kind: 'wait', wakeInMs: 48 * HOUR });
    assert.deepEqual(nextStageAlarm(clock, '24h', t0 + 48 * HOUR), { kind: 'reminder' });
    clock.reminded = true;
    assert.deepEqual(nextStageAlarm(clock, '24h', t0 + 48 * HOUR), { kind: 'wait', wakeInMs: 24 * HOUR });
    assert.deepEqual(nextStageAlarm(clock, '24h', t0 + 72 * HOUR), { kind: 'escalation' });
    clock.escalated = true;
    assert.deepEqual(nextStageAlarm(clock, '24h', t0 + 100 * HOUR), { kind: 'wait', wakeInMs: null });
  });

  it('escalates an overdue stage even when its reminder was never sent, and never sets a timer of 0 ms', () => {
    const clock = openedStageClock(t0, '72h', '24h');
    assert.deepEqual(nextStageAlarm(clock, '24h', t0 + 73 * HOUR), { kind: 'escalation' });
    const almost = openedStageClock(t0, '72h', '24h');
    almost.reminded = true;
    assert.deepEqual(nextStageAlarm(almost, '24h', t0 + 72 * HOUR - 0.5), { kind: 'wait', wakeInMs: 1 });
  });

  it('waits for a future effective date only, counting from now', () => {
    assert.equal(untilEffectiveMs(null, t0), 0);
    assert.equal(untilEffectiveMs('2026-03-01T00:00:00.000Z', t0), 0);
    assert.equal(untilEffectiveMs(new Date(t0).toISOString(), t0), 0);
    assert.equal(untilEffectiveMs('2026-03-02T10:30:00.000Z', t0), 1.5 * HOUR);
  });

  it('puts the next periodic review one interval after the version became effective or was last reviewed', () => {
    assert.equal(nextPeriodicReviewAt(t0, '365d'), '2027-03-02T09:00:00.000Z');
    assert.equal(
      nextPeriodicReviewAt(Date.parse('2028-02-28T09:00:00.000Z'), '365d'),
      '2029-02-27T09:00:00.000Z',
      'days, not calendar years',
    );
    assert.equal(untilPeriodicReviewMs('2027-03-02T09:00:00.000Z', t0), 365 * 24 * HOUR);
    assert.equal(untilPeriodicReviewMs('2026-03-01T09:00:00.000Z', t0), 1, 'an overdue review opens at once');
  });
});
