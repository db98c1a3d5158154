import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Knex } from 'knex';
import {
  autoverificationReasons,
  type AutoverificationFacts,
  type AutoverificationOutcome,
  type AutoverificationRules,
} from '../common/autoverification';
import { FailureType } from '../common/failures';
import { deltaCheck, judgeValue, type DeltaCheck, type MeasuringRange } from '../common/result-rules';
import type { Flag, RangeSnapshot } from '../common/results';
import { deltaPolicyOf, measuringOf, previousResult } from '../db/result-rules';
import { matchingRange, policyRow } from '../db/results';
import { appendAudit } from '../db/audit';
import type { ActivityDeps } from './deps';
import { activityKey } from './keys';

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

/** The analysis a run judges: IDs only. */
export interface JudgedAnalysis {
  workflowId: string;
  analysisId: string;
  accession: string;
  test: string;
}

const specimenProblemsOf = (inspection: { passed?: boolean; checks?: { criterion: string; ok: boolean; detail: string }[] } | null) => {
  if (!inspection) return ['the specimen was not inspected'];
  const problems = (inspection.checks ?? []).filter((c) => !c.ok).map((c) => `${c.criterion}: ${c.detail}`);
  for (const c of inspection.checks ?? []) {
    if ((c.criterion === 'hemolysis' && c.detail === 'hemolyzed') || (c.criterion === 'clotting' && c.detail === 'clotted')) {
      if (c.ok) problems.push(`${c.criterion}: ${c.detail}`);
    }
  }
  return problems;
};

export function resultRuleActivities(deps: ActivityDeps) {
  const { db } = deps;

  async function audit(trx: Knex.Transaction, a: JudgedAnalysis, action: string, details: Record<string, unknown>) {
    await appendAudit(trx, {
      actor: 'system:autoverification',
      action,
      entityType: 'analysis',
      entityId: a.workflowId,
      details: { accession: a.accession, test: a.test, ...details },
      idempotencyKey: activityKey(),
    });
  }

  /** The analysis row, locked, when the run asking is this analysis's own. */
  async function lockedOwn(trx: Knex.Transaction, a: JudgedAnalysis) {
    const row = await trx('analyses').where({ id: a.analysisId }).forNoKeyUpdate().first();
    const running = Context.current().info.workflowExecution?.workflowId;
    if (!row || row.workflow_id !== a.workflowId || running !== a.workflowId) {
      throw ApplicationFailure.create({ type: FailureType.NotFound, message: `${a.workflowId} is not this run's analysis`, nonRetryable: true });
    }
    return row;
  }

  return {
    /**
     * Judges a submitted result by the test's newest signed rule set, on facts read here from PostgreSQL (the value,
     * flag, delta check and instrument flags of the current entry, the specimen's inspection). Passing every rule
     * moves it to `autoverified` with the rule set recorded; failing any keeps it `to_be_verified` with the reasons
     * for a person. Answers the outcome and the version only.
     */
    async autoverifyAnalysis(a: JudgedAnalysis): Promise<AutoverificationOutcome> {
      return db.transaction(async (trx) => {
        const row = await lockedOwn(trx, a);
        if (row.autoverification) return { outcome: row.autoverification.passed ? 'passed' : 'failed', version: row.autoverification.version };
        if (row.state !== 'to_be_verified' || row.frozen) return { outcome: 'no-rule-set', version: null };
        const ruleSet = await trx('autoverification_rule_sets').where({ test_code: a.test }).orderBy('version', 'desc').first();
        if (!ruleSet) return { outcome: 'no-rule-set', version: null };
        const entry = await trx('analysis_entries').where({ id: row.current_entry_id }).first();
        const sample = await trx('samples').where({ id: row.sample_id }).first('inspection');
        const facts: AutoverificationFacts = {
          kind: entry.kind,
          value: entry.numeric_value === null ? null : Number(entry.numeric_value),
          flag: entry.flag,
          deltaCheck: entry.delta_check,
          instrument: entry.instrument,
          instrumentFlags: entry.instrument_flags ?? [],
          specimenProblems: specimenProblemsOf(sample?.inspection ?? null),
        };
        const reasons = autoverificationReasons(ruleSet.rules as AutoverificationRules, facts);
        const passed = reasons.length === 0;
        const verdict = { ruleSetId: ruleSet.id, version: ruleSet.version, passed, reasons, judgedAt: new Date().toISOString() };
        await trx('analyses')
          .where({ id: a.analysisId })
          .update({
            autoverification: JSON.stringify(verdict),
            ...(passed ? { state: 'autoverified', autoverified_by: ruleSet.id } : {}),
            updated_at: trx.fn.now(),
          });
        await audit(trx, a, passed ? 'analysis.autoverified' : 'analysis.autoverification_failed', {
          ruleSetVersion: ruleSet.version,
          ruleSetId: ruleSet.id,
          ...(passed ? {} : { rules: reasons.map((r) => r.rule) }),
        });
        return { outcome: passed ? 'passed' : 'failed', version: ruleSet.version };
      });
    },

    /** Counts an autoverified result as verified (by its rule set, recorded in the audit trail). */
    async countAutoverification(a: JudgedAnalysis): Promise<void> {
      await db.transaction(async (trx) => {
        const row = await lockedOwn(trx, a);
        if (row.state === 'verified') return;
        if (row.state !== 'autoverified') {
          throw ApplicationFailure.create({ type: FailureType.InvalidInput, message: `${a.test} of ${a.accession} is ${row.state}`, nonRetryable: true });
        }
        await trx('analyses').where({ id: a.analysisId }).update({ state: 'verified', updated_at: trx.fn.now() });
        await audit(trx, a, 'analysis.verified', { by: 'autoverification', ruleSetVersion: row.autoverification?.version ?? null });
      });
    },
  };
}
