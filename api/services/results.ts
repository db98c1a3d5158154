import type { WorkflowHandle } from '@temporalio/client';
import { contentHashOf } from '../../common/capa-hash';
import { FINAL_ANALYSIS_STATES, type AnalysisStateName } from '../../common/results';
import type { DeltaCheck } from '../../common/result-rules';
import type { Actor } from '../../common/roles';
import { appendAudit } from '../../db/audit';
import { instrumentUsability, unusableWhy } from '../../db/equipment';
import { policyRow } from '../../db/results';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import type { ResultBody } from '../schemas/results';

type Db = ApiDeps['db'];

export interface AnalysisRow {
  id: string;
  workflow_id: string;
  sample_id: string;
  accession: string;
  test_code: string;
  retest_number: number;
  retest_of: string | null;
  retested_by: string | null;
  state: AnalysisStateName;
  frozen: boolean;
  current_entry_id: string | null;
  reason: string | null;
  /** Set when the instrument path submitted the result: the instrument, its performer, the source, the message. */
  submitted_by?: Record<string, unknown> | null;
}

/** A test's newest analysis on a sample (its latest retest), or nothing when the sample has no such test. */
export const findAnalysis = (db: Db, accession: string, test: string): Promise<AnalysisRow | undefined> =>
  db('analyses').where({ accession, test_code: test }).orderBy('retest_number', 'desc').first();

/** The 404 for a test a sample does not have (not routed, or never requested). */
export const analysisNotFound = (accession: string, test: string) => problems.notFound(`an analysis of ${test} on ${accession}`);

/** A test's current analysis on a sample: its newest retest (404 before the test is routed). */
export async function loadAnalysis(db: Db, accession: string, test: string): Promise<AnalysisRow> {
  const row = await findAnalysis(db, accession, test);
  if (!row) throw analysisNotFound(accession, test);
  return row;
}

/** The run a person's action goes to; an analysis that has ended or was retested is refused (409). */
export function analysisRun(deps: Pick<ApiDeps, 'temporal'>, row: AnalysisRow): WorkflowHandle {
  if (row.frozen) throw problems.conflict('analysis-frozen', `${row.test_code} of ${row.accession} was retested; act on the retest`);
  if (FINAL_ANALYSIS_STATES.includes(row.state)) {
    throw problems.conflict(`analysis-${row.state}`, `${row.test_code} of ${row.accession} is ${row.state}; nothing more can be done`);
  }
  return deps.temporal.workflow.getHandle(row.workflow_id);
}

/**
 * Refuses a value that does not fit the test's policy (422): the wrong kind, another unit than the test's, a code
 * the test does not know. Answers the entry's columns.
 */
export async function entryColumns(db: Db, test: string, body: ResultBody): Promise<Record<string, unknown>> {
  const policy = await policyRow(db, test);
  if (!policy) throw problems.unprocessable('no-result-policy', `test ${test} has no result policy`);
  if (body.kind !== policy.result_kind) {
    throw problems.unprocessable('wrong-result-kind', `${test} takes a ${policy.result_kind} result, not ${body.kind}`);
  }
  if (body.instrument && !body.qcRun) await requireUsableInstrument(db, body.instrument);
  const common = {
    kind: body.kind,
    performed_by: body.performedBy,
    instrument: body.instrument ?? null,
    qc_run: body.qcRun ?? false,
    instrument_flags: body.instrumentFlags?.length ? body.instrumentFlags : null,
  };
  if (body.kind === 'numeric') {
    if (body.unit !== policy.unit) throw problems.unprocessable('wrong-unit', `${test} is reported in ${policy.unit}, not ${body.unit}`);
    return { ...common, numeric_value: body.value, unit: body.unit };
  }
  if (body.kind === 'coded') {
    if (!policy.codes?.includes(body.code)) {
      throw problems.unprocessable('unknown-code', `${test} takes one of: ${(policy.codes ?? []).join(', ')}`);
    }
    return { ...common, coded_value: body.code };
  }
  return { ...common, text_value: body.text };
}

/** A registered instrument that is not usable takes no result but a QC run (409 naming why); the recording step checks again. */
async function requireUsableInstrument(db: Db, code: string): Promise<void> {
  const usability = await instrumentUsability(db, code);
  if (usability && !usability.usable) {
    throw problems.conflict('instrument-not-usable', `instrument ${code} is not usable: ${unusableWhy(usability)}`, {
      state: usability.state,
      reasons: usability.reasons,
      calibrationValid: usability.calibrationValid,
    });
  }
}

/** A pending entry: written before the run hears of it, removed again when the run refuses it. */
export async function writeEntry(db: Db, analysisId: string, actor: Actor, columns: Record<string, unknown>): Promise<string> {
  const [row] = await db('analysis_entries')
    .insert({ ...columns, analysis_id: analysisId, entered_by: actor.userId })
    .returning('id');
  return row.id;
}

export async function dropUnappliedEntry(db: Db, entryId: string): Promise<void> {
  await db('analysis_entries').where({ id: entryId }).whereNull('applied_at').delete();
}

/** A refused verification attempt, kept in the audit trail with the rule that refused it. */
export async function recordRefusedVerification(db: Db, row: AnalysisRow, actor: Actor, rule: string): Promise<void> {
  await appendAudit(db, {
    actorId: actor.userId,
    actor: actor.username,
    action: 'analysis.verification_refused',
    entityType: 'analysis',
    entityId: row.workflow_id,
    details: { accession: row.accession, test: row.test_code, retestNumber: row.retest_number, rule },
  });
}

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

/** An analysis as the API shows it: state, current value with its flag and range snapshot, verifications, links. */
export async function analysisView(db: Db, row: AnalysisRow) {
  const entry = row.current_entry_id ? await db('analysis_entries').where({ id: row.current_entry_id }).first() : null;
  const link = async (id: string | null) => (id ? ((await db('analyses').where({ id }).first('workflow_id'))?.workflow_id ?? null) : null);
  const verifications = await db('analysis_verifications as v')
    .join('users as u', 'u.id', 'v.user_id')
    .leftJoin('signatures as s', 's.id', 'v.signature_id')
    .where('v.analysis_id', row.id)
    .orderBy('v.seq')
    .select('v.seq', 'u.username', 's.printed_name', 's.meaning', 's.signed_at');
  const result = entry && {
    kind: entry.kind,
    value: num(entry.numeric_value),
    unit: entry.unit,
    code: entry.coded_value,
    text: entry.text_value,
    performedBy: entry.performed_by,
    instrument: entry.instrument,
    // Only an instrument's report has one; a manual entry's shape (and so its content hash) is as it always was.
    ...(entry.message_id ? { messageId: entry.message_id as string } : {}),
    // Likewise only a QC run says so.
    ...(entry.qc_run ? { qcRun: true } : {}),
    ...(entry.instrument_flags?.length ? { instrumentFlags: entry.instrument_flags as string[] } : {}),
    enteredAt: new Date(entry.entered_at).toISOString(),
    flag: entry.flag,
    referenceRange: entry.range_snapshot,
    // Only where the test sets them: an older entry's shape (and so its content hash) is as it always was.
    ...(entry.measuring_snapshot ? { measuringRange: entry.measuring_snapshot as { low: number | null; high: number | null } } : {}),
    ...(entry.delta_check ? { deltaCheck: entry.delta_check as Record<string, unknown> } : {}),
  };
  return {
    accession: row.accession,
    test: row.test_code,
    workflowId: row.workflow_id,
    retestNumber: row.retest_number,
    state: row.state,
    frozen: row.frozen,
    reason: row.reason,
    retestOf: await link(row.retest_of),
    retestedBy: await link(row.retested_by),
    result,
    autoverification: (row as AnalysisRow & { autoverification?: unknown }).autoverification ?? null,
    // Only a result the instrument path submitted: the instrument, its performer, the source and message.
    ...(row.submitted_by ? { submittedBy: row.submitted_by } : {}),
    /** What a verifier or the releasing director signs: the analysis and the value they saw. */
    contentHash: contentHashOf({ workflowId: row.workflow_id, entryId: entry?.id ?? null, result: result ?? null }),
    verifications: verifications.map((v) => ({
      seq: v.seq,
      username: v.username,
      printedName: v.printed_name,
      meaning: v.meaning,
      signedAt: v.signed_at ? new Date(v.signed_at).toISOString() : null,
    })),
  };
}

export async function analysesOf(db: Db, accession: string) {
  const rows: AnalysisRow[] = await db('analyses').where({ accession }).orderBy(['test_code', 'retest_number']);
  return Promise.all(rows.map((row) => analysisView(db, row)));
}

type AnalysisView = Awaited<ReturnType<typeof analysisView>>;

/**
 * An analysis as a reader is shown it, and the records the read discloses. The delta check's previous result may be
 * on another sample (another clinician's): the lab sees it, and reading it is part of the same access event; anyone
 * else sees only whether the check was exceeded.
 */
export function analysisAsSeen(view: AnalysisView, lab: boolean): { view: AnalysisView; recordIds: string[] } {
  const delta = view.result?.deltaCheck as DeltaCheck | undefined;
  if (lab) {
    const previous = delta?.previous?.workflowId;
    return { view, recordIds: [view.workflowId, ...(previous ? [previous] : [])] };
  }
  const shown =
    !delta || !view.result
      ? view
      : { ...view, result: { ...view.result, deltaCheck: { ...delta, previous: null, difference: null, percentChange: null } } };
  return { view: shown, recordIds: [view.workflowId] };
}
