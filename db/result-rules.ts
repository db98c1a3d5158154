import type { Knex } from 'knex';
import type { DeltaCheck, DeltaPolicy, MeasuringRange } from '../common/result-rules';
import type { Db } from './knex';
import type { ResultPolicyRow } from './results';

type Q = Db | Knex.Transaction;
const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

/** States in which an analysis's value counts as the patient's previous result for a delta check. */
export const COUNTED_STATES = ['verified', 'released'];

export function measuringOf(policy: ResultPolicyRow): MeasuringRange | null {
  const low = num(policy.measuring_low);
  const high = num(policy.measuring_high);
  return low === null && high === null ? null : { low, high };
}

export function deltaPolicyOf(policy: ResultPolicyRow): DeltaPolicy | null {
  if (policy.delta_limit === null || policy.delta_limit === undefined || !policy.delta_kind) return null;
  return { limit: Number(policy.delta_limit), kind: policy.delta_kind, windowHours: policy.delta_window_hours ?? null };
}

/**
 * The patient's previous numeric result of this test, in the same unit, verified or released, on a sample collected
 * before this analysis's sample (within the window when one is set). The patient is the requisition's MRN: none,
 * no previous result.
 */
export async function previousResult(db: Q, analysisId: string, unit: string, windowHours: number | null): Promise<DeltaCheck['previous']> {
  const here = await db('analyses as a')
    .join('samples as s', 's.id', 'a.sample_id')
    .where('a.id', analysisId)
    .first('a.test_code', 'a.sample_id', 's.patient_mrn', db.raw('coalesce(s.collected_at, s.registered_at) as at'));
  if (!here?.patient_mrn) return null;
  const q = db('analyses as a')
    .join('samples as s', 's.id', 'a.sample_id')
    .join('analysis_entries as e', 'e.id', 'a.current_entry_id')
    .where({ 'a.test_code': here.test_code, 's.patient_mrn': here.patient_mrn, 'e.kind': 'numeric', 'e.unit': unit })
    .whereIn('a.state', COUNTED_STATES)
    .whereNot('a.sample_id', here.sample_id)
    .whereRaw('coalesce(s.collected_at, s.registered_at) < ?', [here.at]);
  if (windowHours !== null) q.whereRaw(`coalesce(s.collected_at, s.registered_at) >= ?::timestamptz - make_interval(hours => ?)`, [here.at, windowHours]);
  const prev = await q
    .orderByRaw('coalesce(s.collected_at, s.registered_at) desc')
    .first('a.workflow_id', 'e.numeric_value', db.raw('coalesce(s.collected_at, s.registered_at) as at'));
  return prev ? { workflowId: prev.workflow_id, value: Number(prev.numeric_value), collectedAt: new Date(prev.at).toISOString() } : null;
}
