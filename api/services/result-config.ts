import { contentHashOf } from '../../common/capa-hash';
import type { AutoverificationRules } from '../../common/autoverification';
import type { Actor } from '../../common/roles';
import type { SignatureInput } from '../../common/signatures';
import { appendAudit } from '../../db/audit';
import { diff } from '../../db/field-changes';
import { policyRow, type ResultPolicyRow } from '../../db/results';
import { recordSignature } from '../../db/signatures';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import type { RangeInput } from '../schemas/result-config';

type Db = ApiDeps['db'];
const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

export async function requirePolicy(db: Db, test: string): Promise<ResultPolicyRow> {
  const row = await policyRow(db, test);
  if (!row) throw problems.notFound(`a result policy for test ${test}`);
  return row;
}

/** What a rule set's signer signs: the test, the version being created and its rules. */
export const ruleSetHash = (test: string, version: number, rules: AutoverificationRules) => contentHashOf({ test, version, rules });

export function policyView(row: ResultPolicyRow) {
  return {
    test: row.test_code,
    resultKind: row.result_kind,
    unit: row.unit,
    codes: row.codes,
    selfVerification: row.self_verification,
    verificationsRequired: row.verifications_required,
    multiVerification: row.multi_verification,
    measuringRange:
      row.measuring_low == null && row.measuring_high == null ? null : { low: num(row.measuring_low), high: num(row.measuring_high) },
    delta: row.delta_limit == null ? null : { limit: Number(row.delta_limit), kind: row.delta_kind!, windowHours: row.delta_window_hours ?? null },
  };
}

type PolicyChange = Partial<Omit<ReturnType<typeof policyView>, 'test' | 'resultKind' | 'unit' | 'codes'>>;

/** Changes a test's policy, audited with each field's old and new value. Analyses already open keep the policy they opened with. */
export async function changePolicy(db: Db, actor: Actor, test: string, change: PolicyChange) {
  return db.transaction(async (trx) => {
    const before = await trx('test_result_policies').where({ test_code: test }).forNoKeyUpdate().first();
    if (!before) throw problems.notFound(`a result policy for test ${test}`);
    if ((change.measuringRange || change.delta) && before.result_kind !== 'numeric') {
      throw problems.unprocessable('not-a-numeric-test', `${test} takes ${before.result_kind} results: measuring ranges and delta limits are for numeric tests`);
    }
    const columns: Record<string, unknown> = {};
    if (change.selfVerification !== undefined) columns.self_verification = change.selfVerification;
    if (change.verificationsRequired !== undefined) columns.verifications_required = change.verificationsRequired;
    if (change.multiVerification !== undefined) columns.multi_verification = change.multiVerification;
    if (change.measuringRange !== undefined) {
      columns.measuring_low = change.measuringRange?.low ?? null;
      columns.measuring_high = change.measuringRange?.high ?? null;
    }
    if (change.delta !== undefined) {
      columns.delta_limit = change.delta?.limit ?? null;
      columns.delta_kind = change.delta?.kind ?? null;
      columns.delta_window_hours = change.delta?.windowHours ?? null;
    }
    if (Object.keys(columns).length) await trx('test_result_policies').where({ test_code: test }).update(columns);
    const after = await trx('test_result_policies').where({ test_code: test }).first();
    const changes = diff(policyView(before), policyView(after));
    if (changes.length) {
      await appendAudit(trx, {
        actorId: actor.userId,
        actor: actor.username,
        action: 'result_policy.changed',
        entityType: 'test_result_policy',
        entityId: test,
        details: { changes },
      });
    }
    return policyView(after);
  });
}

type RangeView = ReturnType<typeof rangeView>;
function rangeView(r: Record<string, unknown>) {
  return {
    sex: r.sex as string,
    ageMinDays: r.age_min_days as number,
    ageMaxDays: (r.age_max_days as number | null) ?? null,
    low: num(r.low),
    high: num(r.high),
    warningLow: num(r.warning_low),
    warningHigh: num(r.warning_high),
    criticalLow: num(r.critical_low),
    criticalHigh: num(r.critical_high),
  };
}

export async function rangesOf(db: Db, test: string) {
  const rows = await db('reference_ranges').where({ test_code: test }).orderBy(['version', 'sex', 'age_min_days']);
  const versions = new Map<number, { version: number; unit: string; createdAt: string; ranges: RangeView[] }>();
  for (const r of rows) {
    const v = versions.get(r.version) ?? { version: r.version, unit: r.unit, createdAt: new Date(r.created_at).toISOString(), ranges: [] as RangeView[] };
    v.ranges.push(rangeView(r));
    versions.set(r.version, v);
  }
  const list = [...versions.values()];
  return { test, currentVersion: list.at(-1)?.version ?? null, versions: list };
}

/** Limits must nest: critical low ≤ warning low ≤ low < high ≤ warning high ≤ critical high (each where given). */
function outOfOrder(r: RangeInput): string | null {
  const chain = [r.criticalLow, r.warningLow, r.low, r.high, r.warningHigh, r.criticalHigh].filter((v): v is number => v !== null);
  for (let i = 1; i < chain.length; i++) if (chain[i] < chain[i - 1]) return 'limits must nest: criticalLow ≤ warningLow ≤ low < high ≤ warningHigh ≤ criticalHigh';
  if (r.low !== null && r.high !== null && r.low >= r.high) return 'low must be below high';
  return null;
}

/**
 * A new version of a test's reference ranges (every row of it at once, in the test's unit). Results already judged
 * keep the snapshot they were judged with. Audited with the old version's ranges and the new one's.
 */
export async function newRangeVersion(db: Db, actor: Actor, test: string, basedOn: number | null, ranges: RangeInput[]) {
  const policy = await requirePolicy(db, test);
  if (policy.result_kind !== 'numeric' || !policy.unit) {
    throw problems.unprocessable('not-a-numeric-test', `${test} takes ${policy.result_kind} results; reference ranges are for numeric tests`);
  }
  for (const r of ranges) {
    const why = outOfOrder(r);
    if (why) throw problems.unprocessable('range-limits-out-of-order', why);
  }
  const keys = ranges.map((r) => `${r.sex}:${r.ageMinDays}`);
  if (new Set(keys).size !== keys.length) throw problems.unprocessable('duplicate-range', 'two ranges for the same sex and age band start');
  await db.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`reference_ranges:${test}`]);
    const latest = (await trx('reference_ranges').where({ test_code: test }).max({ v: 'version' }).first())?.v ?? null;
    if ((latest ?? null) !== basedOn) {
      throw problems.conflict('range-version-conflict', `the current version of ${test}'s ranges is ${latest ?? 'none'}, not ${basedOn ?? 'none'}`, {
        currentVersion: latest,
      });
    }
    const version = (latest ?? 0) + 1;
    const old = latest ? (await trx('reference_ranges').where({ test_code: test, version: latest })).map(rangeView) : [];
    await trx('reference_ranges').insert(
      ranges.map((r) => ({
        test_code: test,
        version,
        sex: r.sex,
        age_min_days: r.ageMinDays,
        age_max_days: r.ageMaxDays,
        unit: policy.unit,
        low: r.low,
        high: r.high,
        warning_low: r.warningLow,
        warning_high: r.warningHigh,
        critical_low: r.criticalLow,
        critical_high: r.criticalHigh,
      })),
    );
    await appendAudit(trx, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'reference_ranges.versioned',
      entityType: 'reference_ranges',
      entityId: test,
      details: { changes: [{ field: 'ranges', old: latest ? { version: latest, ranges: old } : null, new: { version, ranges } }] },
    });
  });
  return rangesOf(db, test);
}

function ruleSetView(test: string, r: Record<string, unknown>) {
  return {
    test,
    version: r.version as number,
    rules: r.rules as AutoverificationRules,
    contentHash: r.content_hash as string,
    createdBy: r.username as string,
    signature: { printedName: r.printed_name as string, meaning: r.meaning as string, signedAt: new Date(r.signed_at as string).toISOString() },
    createdAt: new Date(r.created_at as string).toISOString(),
  };
}

const ruleSetQuery = (db: Db, test: string) =>
  db('autoverification_rule_sets as r')
    .join('users as u', 'u.id', 'r.created_by')
    .join('signatures as s', 's.id', 'r.signature_id')
    .where('r.test_code', test)
    .select('r.*', 'u.username', 's.printed_name', 's.meaning', 's.signed_at');

export async function ruleSetsOf(db: Db, test: string) {
  await requirePolicy(db, test);
  return (await ruleSetQuery(db, test).orderBy('r.version')).map((r) => ruleSetView(test, r));
}

export async function ruleSetOf(db: Db, test: string, version: number) {
  await requirePolicy(db, test);
  const row = await ruleSetQuery(db, test).andWhere('r.version', version).first();
  if (!row) throw problems.notFound(`version ${version} of ${test}'s autoverification rules`);
  return ruleSetView(test, row);
}

/** The next signed version of a test's rule set; another director's newer version first is a 409. */
export async function createRuleSet(
  db: Db,
  actor: Actor,
  test: string,
  basedOn: number | null,
  rules: AutoverificationRules,
  signature: SignatureInput,
) {
  await db.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`autoverification_rule_sets:${test}`]);
    const latest = (await trx('autoverification_rule_sets').where({ test_code: test }).max({ v: 'version' }).first())?.v ?? null;
    if ((latest ?? null) !== basedOn) {
      throw problems.conflict('rule-set-version-conflict', `the current version of ${test}'s rules is ${latest ?? 'none'}, not ${basedOn ?? 'none'}`, {
        currentVersion: latest,
      });
    }
    const version = (latest ?? 0) + 1;
    const key = `autoverification-rules:${test}:v${version}`;
    const signatureId = await recordSignature(trx, {
      idempotencyKey: key,
      entityType: 'autoverification_rule_set',
      entityId: key,
      workflowId: key,
      round: version,
      stageIndex: 0,
      stageName: 'approval',
      actor,
      signature,
    });
    await trx('autoverification_rule_sets').insert({
      test_code: test,
      version,
      rules: JSON.stringify(rules),
      content_hash: signature.contentHash,
      created_by: actor.userId,
      signature_id: signatureId,
    });
    await appendAudit(trx, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'autoverification_rules.versioned',
      entityType: 'autoverification_rule_set',
      entityId: test,
      details: { version, signatureId, changes: diff({ rules: null }, { rules }) },
    });
  });
  return ruleSetOf(db, test, (await db('autoverification_rule_sets').where({ test_code: test }).max({ v: 'version' }).first())!.v);
}
