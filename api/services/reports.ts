import type { Context } from 'koa';
import type { Actor } from '../../common/roles';
import { assembleReportContent, correctionOf } from '../../db/reports';
import type { ApiDeps } from '../deps';
import { logPhiRead, phiVia } from '../patient-access';
import { problems } from '../problem';
import type { SampleRow } from '../../db/sample-intake';
import { isLabStaff, patientsOf, readsSampleResults, refuseResultRead } from './result-access';

type Db = ApiDeps['db'];

export interface ReportRow {
  id: string;
  workflow_id: string;
  sample_id: string;
  accession: string;
  version: number;
  state: 'awaiting_release' | 'released';
  corrects_report_id: string | null;
  correction_reason: string | null;
  content: unknown;
  content_hash: string | null;
  pdf_sha256: string | null;
  signature_id: string | null;
  released_at: Date | null;
  release_request_id: string | null;
  /** The ordering provider the version was delivered to at its release. */
  ordering_provider_id: string | null;
}

/**
 * Whether the caller sees a report before its release: the lab does; its submitter, ordering provider and the care
 * team read what the lab director released, the point at which results are issued.
 */
export const seesUnreleased = isLabStaff;

/**
 * Who reads a sample's reports: those who read its results as they stand (lab staff, its submitter, its current
 * ordering provider) and the care team of the patient the requisition names (matched by MRN) read every version they
 * are shown; an ordering provider the sample no longer names reads the released versions that were delivered to them,
 * and only those. Anyone else gets 403, and the refusal is a PHI access event too. Answers the patients the reads
 * concern and the rows the caller reads.
 */
export async function requireReportAccess<R extends Pick<ReportRow, 'id' | 'state' | 'ordering_provider_id'>>(
  deps: ApiDeps,
  sample: SampleRow,
  actor: Actor,
  ctx: Context,
  rows: R[],
): Promise<{ patientIds: string[]; rows: R[] }> {
  const { db } = deps;
  const patientIds = await patientsOf(db, sample);
  const everyVersion = { patientIds, rows };
  if (readsSampleResults(sample, actor)) return everyVersion;
  if (
    patientIds.length &&
    (await db('patient_clinicians').whereIn('patient_id', patientIds).where({ user_id: actor.userId }).first('user_id'))
  ) {
    return everyVersion;
  }
  const delivered = rows.filter((r) => r.state === 'released' && r.ordering_provider_id === actor.userId);
  if (delivered.length) return { patientIds, rows: delivered };
  return refuseResultRead(
    deps,
    ctx,
    actor,
    { kind: rows.length === 1 ? 'report' : 'report_list', patientIds, recordIds: rows.map((r) => r.id) },
    `the reports of ${sample.accession} are read by lab staff, its submitter, its ordering provider and the patient's care team`,
  );
}

export const logReportRead = (
  deps: ApiDeps,
  actor: Actor,
  ctx: Context,
  kind: 'report' | 'report_list',
  patientIds: string[],
  recordIds: string[],
) => logPhiRead(deps.db, actor, phiVia(ctx), { kind, patientIds, recordIds }, deps.log);

export async function loadReport(db: Db, accession: string, version: number): Promise<ReportRow> {
  const row = await db('reports').where({ accession, version }).first();
  if (!row) throw problems.notFound(`report v${version} of ${accession}`);
  return row;
}

/**
 * A report version as the API shows it. Before release: the content as the records stand now, with the hash the
 * lab director signs and the tests still blocking a release. After: the content as released, never recomputed.
 */
export async function reportView(db: Db, row: ReportRow) {
  const correction = await correctionOf(db, row);
  const correctedBy = await db('reports').where({ corrects_report_id: row.id }).first('version');
  const released = row.state === 'released';
  const live = released ? null : await assembleReportContent(db, row.sample_id, correction);
  const signature = released
    ? await db('signatures').where({ id: row.signature_id }).first('printed_name', 'username', 'meaning', 'signed_at')
    : null;
  return {
    accession: row.accession,
    version: row.version,
    workflowId: row.workflow_id,
    state: row.state,
    corrected: correction !== null,
    correction,
    correctedBy: correctedBy?.version ?? null,
    contentHash: live ? live.contentHash : (row.content_hash ?? ''),
    unverified: live ? live.unverified : [],
    content: live ? live.content : row.content,
    pdfSha256: row.pdf_sha256,
    pdf: released ? `/api/v1/samples/${row.accession}/reports/v${row.version}/pdf` : null,
    release: signature
      ? {
          printedName: signature.printed_name,
          username: signature.username,
          meaning: signature.meaning,
          signedAt: new Date(signature.signed_at).toISOString(),
        }
      : null,
  };
}
