import type { Knex } from 'knex';
import { deltaCheck, judgeValue, type DeltaCheck, type MeasuringRange } from '../common/result-rules';
import type { Flag, RangeSnapshot } from '../common/results';
import { deltaPolicyOf, measuringOf, previousResult } from '../db/result-rules';
import { matchingRange, policyRow } from '../db/results';

/**
 * A numeric entry judged as it is applied: its reference range (the snapshot kept with it), the test's measuring
 * range, the flag, and the delta check against the patient's previous verified result where the policy sets a limit.
 */
export async function judgeEntry(
  trx: Knex.Transaction,
  ref: { analysisId: string; test: string },
  entry: { numeric_value: string | number; unit: string },
): Promise<{ flag: Flag | null; range: RangeSnapshot | null; measuring: MeasuringRange | null; delta: DeltaCheck | null }> {
  const value = Number(entry.numeric_value);
  const policy = await policyRow(trx, ref.test);
  const range = await matchingRange(trx, ref.analysisId, entry.unit);
  const measuring = policy ? measuringOf(policy) : null;
  const deltaPolicy = policy ? deltaPolicyOf(policy) : null;
  const delta = deltaPolicy ? deltaCheck(deltaPolicy, value, await previousResult(trx, ref.analysisId, entry.unit, deltaPolicy.windowHours)) : null;
  return { flag: judgeValue(value, range, measuring), range, measuring, delta };
}
