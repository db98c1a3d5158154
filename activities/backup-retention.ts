import type { BackupTier } from '../common/scheduled-work';

export interface RetentionCandidate {
  id: string;
  takenAt: string;
}

export interface RetentionPlan {
  keep: Map<string, BackupTier>;
  expire: string[];
}

/** Calendar parts of an instant in a time zone. */
function localDate(iso: string, timeZone: string): { y: number; m: number; d: number } {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(
    new Date(iso),
  );
  const get = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  return { y: get('year'), m: get('month'), d: get('day') };
}

/** ISO 8601 week of a calendar date: '2026-W47'. */
function isoWeek({ y, m, d }: { y: number; m: number; d: number }): string {
  const date = new Date(Date.UTC(y, m - 1, d));
  const weekday = date.getUTCDay() || 7;
  date.setUTCDate(date.getUTCDate() + 4 - weekday);
  const yearStart = Date.UTC(date.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((date.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${date.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

/**
 * Grandfather-father-son over verified backups: for the last `daily` days that have a backup keep the newest of
 * each day, likewise for ISO weeks and calendar months (days, weeks and months in the lab's zone). A backup kept
 * by several rules gets the longest tier. Everything else expires. Callers pass only verified backups without a
 * legal hold, so failed, unverified and held backups neither count nor expire.
 */
export function planRetention(
  backups: RetentionCandidate[],
  rules: { daily: number; weekly: number; monthly: number },
  timeZone: string,
): RetentionPlan {
  const newestFirst = [...backups].sort((a, b) => Date.parse(b.takenAt) - Date.parse(a.takenAt));
  const keep = new Map<string, BackupTier>();
  const tiers: [BackupTier, number, (iso: string) => string][] = [
    [
      'daily',
      rules.daily,
      (iso) => {
        const p = localDate(iso, timeZone);
        return `${p.y}-${p.m}-${p.d}`;
      },
    ],
    ['weekly', rules.weekly, (iso) => isoWeek(localDate(iso, timeZone))],
    [
      'monthly',
      rules.monthly,
      (iso) => {
        const p = localDate(iso, timeZone);
        return `${p.y}-${p.m}`;
      },
    ],
  ];
  for (const [tier, count, periodOf] of tiers) {
    const seen = new Set<string>();
    for (const backup of newestFirst) {
      if (seen.size >= count) break;
      const period = periodOf(backup.takenAt);
      if (seen.has(period)) continue;
      seen.add(period);
      keep.set(backup.id, tier);
    }
  }
  return { keep, expire: newestFirst.filter((b) => !keep.has(b.id)).map((b) => b.id) };
}
