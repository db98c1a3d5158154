import type { Knex } from 'knex';
import { contentHashOf } from '../common/capa-hash';
import { REPORTABLE_STATES } from '../common/reports';
import type { Db } from './knex';

type Q = Db | Knex.Transaction;

/** Analysis states that end a test without a result to report: shown as not reported, with the reason. */
const ENDED_WITHOUT_RESULT = ['cancelled', 'retracted', 'rejected'];

export interface ReportTest {
  test: string;
  name: string;
  analysisId: string;
  workflowId: string;
  state: string;
  /** The result as printed: a value with its unit, a code, or text; null when the test ended without one. */
  result: { kind: string; value: number | null; unit: string | null; code: string | null; text: string | null } | null;
  flag: string | null;
  /** The range the result was judged against when it was entered (its snapshot), never today's range. */
  referenceRange: { low: number | null; high: number | null; unit: string; version: number } | null;
  performedBy: string | null;
  instrument: string | null;
  verifiedBy: string[];
  reason: string | null;
}

/** What a report shows of a sample, PHI included: read and written only in Postgres. */
export interface ReportContent {
  patient: { name: string | null; mrn: string | null; dob: string | null; sex: string | null };
  sample: {
    accession: string;
    /** The specimen's source as the lab records it: its sample type (serum, urine, CSF...). */
    specimenSource: string;
    collectedAt: string | null;
    receivedAt: string | null;
    submitter: string | null;
    /**
     * The ordering provider the version is delivered to (their printed name; null when the sample names none). Absent
     * from the content of versions assembled before reports named them: a released version's content never changes.
     */
    orderingProvider?: string | null;
  };
  tests: ReportTest[];
  /** Specimens (or tests of one) that did not meet the lab's criteria: their condition and disposition. */
  rejections: { tests: string[]; code: string | null; condition: string | null; disposition: string | null }[];
  correction: { version: number; reason: string } | null;
}

export interface ReportReadiness {
  content: ReportContent;
  contentHash: string;
  /** Accepted tests without a verified result and not ended: the reasons a release is refused. */
  unverified: { test: string; state: string }[];
  /** The analyses with a verified result. */
  verifiedAnalyses: { id: string; workflowId: string; state: string }[];
  /** The whole specimen was rejected: the report shows its condition and disposition (493.1291(c)(7)). */
  rejectedInFull: boolean;
}

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
const iso = (v: unknown) => (v ? new Date(v as string).toISOString() : null);

/**
 * A sample's report as its records stand now: each accepted test's newest analysis with its result, flag and the
 * snapshot of the range it was judged against; the rejections; a correction's reason. The content hash is what the
 * lab director signs; the API shows it and the release step assembles again and compares.
 */
export async function assembleReportContent(db: Q, sampleId: string, correction: ReportContent['correction']): Promise<ReportReadiness> {
  const s = await db('samples as s')
    .leftJoin('sample_types as t', 't.code', 's.sample_type')
    .leftJoin('users as u', 'u.id', 's.submitter_id')
    .leftJoin('users as op', 'op.id', 's.ordering_provider_id')
    .where('s.id', sampleId)
    .first(
      's.accession',
      's.sample_type',
      't.name as type_name',
      's.source',
      's.patient_name',
      's.patient_mrn',
      's.patient_dob',
      's.patient_sex',
      's.collected_at',
      's.received_at',
      's.requested_tests',
      's.rejected_tests',
      's.state',
      's.rejection_code',
      's.rejection_condition',
      's.disposition',
      'u.printed_name as submitter',
      'op.printed_name as ordering_provider',
    );
  if (!s) throw new Error(`no sample ${sampleId}`);
  const analyses = await db('analyses as a')
    .join('test_codes as c', 'c.code', 'a.test_code')
    .leftJoin('analysis_entries as e', 'e.id', 'a.current_entry_id')
    .where('a.sample_id', sampleId)
    .where('a.frozen', false)
    .orderBy(['a.test_code', { column: 'a.retest_number', order: 'desc' }])
    .select(
      'a.id',
      'a.workflow_id',
      'a.test_code',
      'c.name',
      'a.state',
      'a.reason',
      'e.kind',
      'e.numeric_value',
      'e.unit',
      'e.coded_value',
      'e.text_value',
      'e.flag',
      'e.range_snapshot',
      'e.performed_by',
      'e.instrument',
    );
  const newest = new Map<string, (typeof analyses)[number]>();
  for (const a of analyses) if (!newest.has(a.test_code)) newest.set(a.test_code, a);
  const rejected: string[] = s.rejected_tests ?? [];
  const accepted = (s.requested_tests as string[]).filter((t) => !rejected.includes(t));
  const codes = [...new Set([...accepted, ...newest.keys()])].sort();
  const names = Object.fromEntries(
    (await db('test_codes').whereIn('code', codes).select('code', 'name')).map((r: { code: string; name: string }) => [r.code, r.name]),
  );
  const verifiers = await db('analysis_verifications as v')
    .join('signatures as g', 'g.id', 'v.signature_id')
    .whereIn(
      'v.analysis_id',
      [...newest.values()].map((a) => a.id),
    )
    .orderBy(['v.analysis_id', 'v.seq'])
    .select('v.analysis_id', 'g.printed_name');

  const tests: ReportTest[] = [];
  const unverified: ReportReadiness['unverified'] = [];
  const verifiedAnalyses: ReportReadiness['verifiedAnalyses'] = [];
  for (const code of codes) {
    if (rejected.includes(code) && !newest.has(code)) continue;
    const a = newest.get(code);
    if (!a) {
      unverified.push({ test: code, state: 'not_routed' });
      continue;
    }
    const verified = REPORTABLE_STATES.includes(a.state);
    if (verified) verifiedAnalyses.push({ id: a.id, workflowId: a.workflow_id, state: a.state });
    else if (!ENDED_WITHOUT_RESULT.includes(a.state)) unverified.push({ test: code, state: a.state });
    const range = a.range_snapshot as { low: number | null; high: number | null; unit: string; version: number } | null;
    tests.push({
      test: code,
      name: names[code] ?? a.name,
      analysisId: a.id,
      workflowId: a.workflow_id,
      state: a.state,
      result:
        verified && a.kind
          ? { kind: a.kind, value: num(a.numeric_value), unit: a.unit ?? null, code: a.coded_value ?? null, text: a.text_value ?? null }
          : null,
      flag: verified ? (a.flag ?? null) : null,
      referenceRange: verified && range ? { low: range.low, high: range.high, unit: range.unit, version: range.version } : null,
      performedBy: verified ? (a.performed_by ?? null) : null,
      instrument: verified ? (a.instrument ?? null) : null,
      verifiedBy: verifiers
        .filter((v: { analysis_id: string }) => v.analysis_id === a.id)
        .map((v: { printed_name: string }) => v.printed_name),
      reason: ENDED_WITHOUT_RESULT.includes(a.state) ? (a.reason ?? null) : null,
    });
  }

  const rejections: ReportContent['rejections'] = [];
  if (s.state === 'rejected') {
    rejections.push({
      tests: rejected,
      code: s.rejection_code ?? null,
      condition: s.rejection_condition ?? null,
      disposition: s.disposition ?? null,
    });
  } else if (rejected.length) {
    const partial = await db('sample_recollection_requests')
      .where({ sample_id: sampleId })
      .orderBy('created_at')
      .select('tests', 'rejection_code', 'reason');
    for (const r of partial)
      rejections.push({ tests: r.tests, code: r.rejection_code, condition: r.reason, disposition: 'recollection requested' });
  }

  const content: ReportContent = {
    patient: {
      name: s.patient_name ?? null,
      mrn: s.patient_mrn ?? null,
      dob: (s.patient_dob as string | null) ?? null,
      sex: s.patient_sex ?? null,
    },
    sample: {
      accession: s.accession,
      specimenSource: s.type_name ? `${s.type_name} (${s.sample_type})` : s.sample_type,
      collectedAt: iso(s.collected_at),
      receivedAt: iso(s.received_at),
      submitter: s.submitter ?? null,
      orderingProvider: s.ordering_provider ?? null,
    },
    tests,
    rejections,
    correction,
  };
  return { content, contentHash: contentHashOf(content), unverified, verifiedAnalyses, rejectedInFull: s.state === 'rejected' };
}

/** The correction a version carries: the version it corrects and why (null for a first report). */
export async function correctionOf(db: Q, report: { corrects_report_id: string | null; correction_reason: string | null }) {
  if (!report.corrects_report_id) return null;
  const corrected = await db('reports').where({ id: report.corrects_report_id }).first('version');
  return { version: corrected.version as number, reason: report.correction_reason ?? '' };
}
