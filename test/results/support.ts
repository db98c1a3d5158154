import assert from 'node:assert/strict';
import { contentHashOf } from '../../common/capa-hash';
import { testEnv } from '../setup/env';
import { saveCheckedFixture } from '../helpers/replay-suite';
import { startPlatform, type Platform, type PlatformOptions } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { inspected, mustAct, tag } from '../sample-intake/support';

export interface TestPolicy {
  kind?: 'numeric' | 'coded' | 'text';
  unit?: string | null;
  codes?: string[] | null;
  selfVerification?: boolean;
  verificationsRequired?: number;
  multiVerification?: 'distinct' | 'not_consecutive';
  ranges?: { sex?: 'any' | 'female' | 'male'; low?: number; high?: number; criticalLow?: number; criticalHigh?: number; version?: number }[];
}

/** A serum test of the test's own, with its result policy and reference ranges, so no other test sees them. */
export async function testCode(policy: TestPolicy = {}): Promise<string> {
  const { db } = testEnv();
  const code = `R${tag().toUpperCase()}`;
  const kind = policy.kind ?? 'numeric';
  const unit = kind === 'numeric' ? (policy.unit ?? 'mmol/L') : null;
  await db('test_codes').insert({ code, name: `Result test ${code}`, sample_type: 'SERUM', work_queue: 'chemistry' });
  await db('test_result_policies').insert({
    test_code: code,
    result_kind: kind,
    unit,
    codes: kind === 'coded' ? (policy.codes ?? ['positive', 'negative']) : null,
    self_verification: policy.selfVerification ?? false,
    verifications_required: policy.verificationsRequired ?? 1,
    multi_verification: policy.multiVerification ?? 'distinct',
  });
  await addRanges(code, unit ?? '', policy.ranges ?? (kind === 'numeric' ? [{ low: 3.5, high: 5.5, criticalLow: 2.5, criticalHigh: 7 }] : []));
  return code;
}

export async function addRanges(code: string, unit: string, ranges: NonNullable<TestPolicy['ranges']>): Promise<void> {
  for (const r of ranges) {
    await testEnv()
      .db('reference_ranges')
      .insert({
        test_code: code,
        version: r.version ?? 1,
        sex: r.sex ?? 'any',
        unit,
        low: r.low ?? null,
        high: r.high ?? null,
        critical_low: r.criticalLow ?? null,
        critical_high: r.criticalHigh ?? null,
      });
  }
}

/** A sample accepted and routed for these tests, once each test's analysis is open. */
export async function routedSample(
  p: Platform,
  doc: TestUser,
  tech: TestUser,
  tests: string[],
  patient: Record<string, unknown> = {},
  /** More of the requisition (an ordering provider). */
  requisition: Record<string, unknown> = {},
) {
  const { accession } = await inspected(p, doc, tech, {
    tests,
    patient: { name: 'Ada Lovelace', dob: '1915-12-10', mrn: 'MRN-0042', ...patient },
    ...requisition,
  });
  await mustAct(p, tech, accession, 'accept');
  await mustAct(p, tech, accession, 'route', {});
  await waitFor(
    async () => Number((await testEnv().db('analyses').where({ accession }).count({ n: '*' }))[0].n) === tests.length,
    `analyses of ${accession}`,
  );
  return accession;
}

export const analysisUrl = (accession: string, test: string, action = '') =>
  `/api/v1/samples/${accession}/analyses/${test}${action ? `/${action}` : ''}`;

export async function analysisAct(p: Platform, user: TestUser, accession: string, test: string, action: string, body: unknown = {}) {
  return p.api('POST', analysisUrl(accession, test, action), { key: user.apiKey, body });
}

export async function mustAnalysisAct(p: Platform, user: TestUser, accession: string, test: string, action: string, body: unknown = {}) {
  const res = await analysisAct(p, user, accession, test, action, body);
  if (res.status !== 200) throw new Error(`${action} answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

export async function readAnalysis(p: Platform, user: TestUser, accession: string, test: string) {
  const res = await p.api('GET', analysisUrl(accession, test), { key: user.apiKey });
  if (res.status !== 200) throw new Error(`read answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

/** A signed verification (or release) of what the analysis shows now. */
export async function sign(p: Platform, user: TestUser, accession: string, test: string, action: 'verify' | 'release') {
  const { contentHash } = await readAnalysis(p, user, accession, test);
  const meaning = action === 'verify' ? 'verification' : 'responsibility';
  return analysisAct(p, user, accession, test, action, { signature: { password: user.password, meaning, contentHash } });
}

export const refusedVerifications = async (workflowId: string) =>
  (await testEnv()
    .db('audit_events')
    .where({ entity_type: 'analysis', entity_id: workflowId, action: 'analysis.verification_refused' })
    .orderBy('seq')
    .select('actor', 'details')) as { actor: string; details: { rule: string } }[];

/** The people the results tests need: a submitting clinician, three technicians and the lab director. */
export const labUsers = () =>
  makeUsers({
    doc: ['clinician'],
    tech: ['lab_technician'],
    tech2: ['lab_technician'],
    tech3: ['lab_technician'],
    director: ['lab_director'],
  });

export type LabUsers = Awaited<ReturnType<typeof labUsers>>;

/**
 * Inside a `describe`: the test platform started and the lab's people made before its tests, the platform stopped
 * after them. Read `lab.p` and `lab.u` inside a test or hook (they are set once `before` has run).
 */
export function labPlatform(options: PlatformOptions = {}): { p: Platform; u: LabUsers } {
  const lab = {} as { p: Platform; u: LabUsers };
  before(async () => {
    lab.p = await startPlatform(options);
    lab.u = await labUsers();
  });
  after(() => lab.p?.stop());
  return lab;
}

/** Saves a run's history as a replay fixture, checked to carry none of these values (test/fixtures/histories/<folder>/). */
export const fixtureSaver = (leaks: string[]) => (folder: string, name: string, workflowId: string) =>
  saveCheckedFixture(testEnv().client, folder, name, workflowId, leaks);

/** The test's first autoverification rule set, signed by the lab director: results flagged normal from an instrument. */
export async function approvedRules(p: Platform, director: TestUser, test: string, rules: Record<string, unknown> = {}) {
  const signed = {
    allowedFlags: ['normal'],
    limits: null,
    delta: 'ignore',
    blockedInstrumentFlags: [],
    requireAcceptableSpecimen: true,
    requireInstrument: true,
    ...rules,
  };
  const created = await p.api('POST', `/api/v1/tests/${test}/autoverification-rules`, {
    key: director.apiKey,
    body: {
      basedOnVersion: null,
      rules: signed,
      signature: { password: director.password, meaning: 'approval', contentHash: contentHashOf({ test, version: 1, rules: signed }) },
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return created.body;
}
