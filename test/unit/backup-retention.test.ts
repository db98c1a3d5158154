import assert from 'node:assert/strict';
import { planRetention, type RetentionCandidate } from '../../activities/backup-retention';

/** One backup a day at the given local-ish UTC time, newest first from `last` back `days` days. */
function daily(last: string, days: number, at = 'T01:00:00Z'): RetentionCandidate[] {
  const end = Date.parse(`${last}${at}`);
  return Array.from({ length: days }, (_, i) => {
    const takenAt = new Date(end - i * 86_400_000).toISOString();
    return { id: takenAt.slice(0, 10), takenAt };
  });
}

const kept = (plan: ReturnType<typeof planRetention>) => [...plan.keep.entries()].map(([id, tier]) => `${id}:${tier}`).sort();

describe('backup retention calendars (grandfather-father-son)', () => {
  it('keeps the newest of each of the last days, ISO weeks and months, the longest tier winning, and expires the rest', () => {
    // Nov 1 2026 is a Sunday: ISO week 44 runs Oct 26 to Nov 1.
    const plan = planRetention(daily('2026-11-01', 120), { daily: 7, weekly: 4, monthly: 5 }, 'UTC');
    assert.deepEqual(kept(plan), [
      '2026-07-31:monthly',
      '2026-08-31:monthly',
      '2026-09-30:monthly',
      '2026-10-11:weekly',
      '2026-10-18:weekly',
      '2026-10-25:weekly',
      '2026-10-26:daily',
      '2026-10-27:daily',
      '2026-10-28:daily',
      '2026-10-29:daily',
      '2026-10-30:daily',
      '2026-10-31:monthly',
      '2026-11-01:monthly',
    ]);
    assert.equal(plan.expire.length, 120 - plan.keep.size);
    assert.ok(!plan.expire.some((id) => plan.keep.has(id)), 'nothing is both kept and expired');
  });

  it('counts days that have a backup, not calendar days: a gap does not shorten what is kept', () => {
    const withGap = daily('2026-11-01', 30).filter((b) => !['2026-10-30', '2026-10-29', '2026-10-28'].includes(b.id));
    const plan = planRetention(withGap, { daily: 3, weekly: 0, monthly: 0 }, 'UTC');
    assert.deepEqual(kept(plan), ['2026-10-27:daily', '2026-10-31:daily', '2026-11-01:daily']);
  });

  it('keeps only the newest backup of a day that has several', () => {
    const sameDay = [
      { id: 'morning', takenAt: '2026-11-01T06:00:00Z' },
      { id: 'evening', takenAt: '2026-11-01T18:00:00Z' },
      { id: 'yesterday', takenAt: '2026-10-31T18:00:00Z' },
    ];
    const plan = planRetention(sameDay, { daily: 2, weekly: 0, monthly: 0 }, 'UTC');
    assert.deepEqual(kept(plan), ['evening:daily', 'yesterday:daily']);
    assert.deepEqual(plan.expire, ['morning']);
  });

  it("reads days in the lab's time zone: 23:30Z on Oct 31 is already Nov 1 in Berlin", () => {
    const backups = [
      { id: 'late', takenAt: '2026-10-31T23:30:00Z' },
      { id: 'early', takenAt: '2026-10-31T08:00:00Z' },
    ];
    assert.deepEqual(kept(planRetention(backups, { daily: 1, weekly: 0, monthly: 0 }, 'UTC')), ['late:daily']);
    assert.deepEqual(kept(planRetention(backups, { daily: 2, weekly: 0, monthly: 0 }, 'UTC')), ['late:daily']);
    assert.deepEqual(kept(planRetention(backups, { daily: 2, weekly: 0, monthly: 0 }, 'Europe/Berlin')), ['early:daily', 'late:daily']);
    // In Berlin they fall in different months too.
    assert.deepEqual(kept(planRetention(backups, { daily: 0, weekly: 0, monthly: 2 }, 'Europe/Berlin')), ['early:monthly', 'late:monthly']);
  });

  it('uses ISO weeks across a year end: Dec 31 2026 (Thursday) and Jan 3 2027 (Sunday) are week 53 of 2026', () => {
    const backups = [
      { id: 'jan4', takenAt: '2027-01-04T12:00:00Z' },
      { id: 'jan3', takenAt: '2027-01-03T12:00:00Z' },
      { id: 'dec31', takenAt: '2026-12-31T12:00:00Z' },
      { id: 'dec27', takenAt: '2026-12-27T12:00:00Z' },
    ];
    const plan = planRetention(backups, { daily: 0, weekly: 3, monthly: 0 }, 'UTC');
    assert.deepEqual(kept(plan), ['dec27:weekly', 'jan3:weekly', 'jan4:weekly']);
    assert.deepEqual(plan.expire, ['dec31']);
  });

  it('keeps nothing with every rule at zero, and plans nothing for no backups', () => {
    const backups = daily('2026-11-01', 3);
    assert.deepEqual(planRetention(backups, { daily: 0, weekly: 0, monthly: 0 }, 'UTC').expire.sort(), backups.map((b) => b.id).sort());
    const empty = planRetention([], { daily: 7, weekly: 4, monthly: 12 }, 'UTC');
    assert.equal(empty.keep.size, 0);
    assert.deepEqual(empty.expire, []);
  });
});
