import type { Knex } from 'knex';
import type { RangeSnapshot, VerificationPolicy } from '../common/results';
import type { Db } from './knex';

type Q = Db | Knex.Transaction;

export interface ResultPolicyRow {
  test_code: string;
  result_kind: 'numeric' | 'coded' | 'text';
  unit: string | null;
  codes: string[] | null;
  self_verification: boolean;
  verifications_required: number;
  multi_verification: 'distinct' | 'not_consecutive';
  measuring_low?: string | null;
  measuring_high?: string | null;
  delta_limit?: string | null;
  delta_kind?: 'absolute' | 'percent' | null;
  delta_window_hours?: number | null;
}

export const policyRow = (db: Q, test: string): Promise<ResultPolicyRow | undefined> =>
  db('test_result_policies').where({ test_code: test }).first();

export async function policyOf(db: Q, test: string): Promise<VerificationPolicy | null> {
  const row = await policyRow(db, test);
  return row
    ? { selfVerification: row.self_verification, verificationsRequired: row.verifications_required, multiVerification: row.multi_verification }
    : null;
}

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
const DAY_MS = 86_400_000;

/**
 * The reference range an analysis's numeric result is judged against: the test's newest version, for the
 * patient's sex (a range for either sex when no sex-specific one matches) and age on the collection date, in the
 * result's unit. None when the patient's sex or age is needed and unknown: no range means no flag.
 */
export async function matchingRange(db: Q, analysisId: string, unit: string): Promise<RangeSnapshot | null> {
  const a = await db('analyses as a')
    .join('samples as s', 's.id', 'a.sample_id')
    .where('a.id', analysisId)
    .first('a.test_code', 's.patient_sex', 's.patient_dob', 's.collected_at', 's.registered_at');
  if (!a) return null;
  const latest = await db('reference_ranges').where({ test_code: a.test_code }).max({ v: 'version' }).first();
  if (!latest?.v) return null;
  const at = new Date(a.collected_at ?? a.registered_at).getTime();
  const ageDays = a.patient_dob ? Math.floor((at - new Date(a.patient_dob).getTime()) / DAY_MS) : null;
  const rows = await db('reference_ranges').where({ test_code: a.test_code, version: latest.v, unit });
  const fits = (r: { sex: string; age_min_days: number; age_max_days: number | null }) =>
    (r.sex === 'any' || r.sex === a.patient_sex) &&
    (ageDays === null
      ? r.age_min_days === 0 && r.age_max_days === null
      : ageDays >= r.age_min_days && (r.age_max_days === null || ageDays < r.age_max_days));
  const candidates = rows.filter(fits).sort((x, y) => (x.sex === 'any' ? 1 : 0) - (y.sex === 'any' ? 1 : 0));
  const r = candidates[0];
  if (!r) return null;
  return {
    id: r.id,
    version: r.version,
    sex: r.sex,
    ageMinDays: r.age_min_days,
    ageMaxDays: r.age_max_days,
    unit: r.unit,
    low: num(r.low),
    high: num(r.high),
    criticalLow: num(r.critical_low),
    criticalHigh: num(r.critical_high),
    warningLow: num(r.warning_low),
    warningHigh: num(r.warning_high),
  };
}
