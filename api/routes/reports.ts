import { RESULT_RELEASE } from '../../db/gate';
import { requireGate } from '../services/training';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { z } from 'zod';
import { workflowIds } from '../../common/ids';
import { boundReportReleaseArgs, releaseReportUpdate, REPORT_RELEASE, type ReportInput } from '../../common/reports';
import { appendAudit } from '../../db/audit';
import { assembleReportContent, correctionOf } from '../../db/reports';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import {
  correctionStarted,
  correctReportBody,
  releaseReportBody,
  reportAnswer,
  reportListAnswer,
  reportListParams,
  reportParams,
  reportPdf,
} from '../schemas/reports';
import { loadReport, logReportRead, reportView, requireReportAccess, seesUnreleased, type ReportRow } from '../services/reports';
import { loadSample } from '../services/sample-intake';
import { grantAction, verifySigner } from '../signing';

const TAG = 'reports';
type Params = z.infer<typeof reportParams>;
const READERS =
  "Lab roles (lab_technician, lab_director), the clinician who submitted the sample, the sample's ordering provider, and the care team of the patient its requisition names (by MRN); a former ordering provider reads the released versions delivered to them; admin does not pass. Every read and refusal is a PHI access event.";

export function reportRoutes(deps: ApiDeps): RouteSpec[] {
  const { db } = deps;

  return [
    route<z.infer<typeof reportListParams>>({
      method: 'get',
      path: '/samples/:accession/reports',
      summary: "A sample's reports, every version (a correction and the one it corrects)",
      tag: TAG,
      roles: 'any',
      access: READERS,
      params: reportListParams,
      response: reportListAnswer,
      handler: async ({ params, actor, ctx }) => {
        const sample = await loadSample(db, params.accession);
        const rows: ReportRow[] = await db('reports')
          .where({ sample_id: sample.id })
          .modify((q) => (seesUnreleased(actor) ? q : q.where({ state: 'released' })))
          .orderBy('version');
        const readable = await requireReportAccess(deps, sample, actor, ctx, rows);
        const items = [];
        for (const row of readable.rows) items.push(await reportView(db, row));
        await logReportRead(
          deps,
          actor,
          ctx,
          'report_list',
          readable.patientIds,
          readable.rows.map((r) => r.id),
        );
        ctx.body = { items };
      },
    }),
    route<Params>({
      method: 'get',
      path: '/samples/:accession/reports/:version',
      summary: 'One report version: its content, the hash to sign, what blocks its release, its signature once released',
      tag: TAG,
      roles: 'any',
      access: READERS,
      params: reportParams,
      response: reportAnswer,
      handler: async ({ params, actor, ctx }) => {
        const sample = await loadSample(db, params.accession);
        const row = await loadReport(db, params.accession, params.version);
        const { patientIds } = await requireReportAccess(deps, sample, actor, ctx, [row]);
        if (row.state !== 'released' && !seesUnreleased(actor))
          throw problems.conflict('report-not-released', `report v${row.version} of ${row.accession} is not released yet`);
        ctx.body = await reportView(db, row);
        await logReportRead(deps, actor, ctx, 'report', patientIds, [row.id]);
      },
    }),
    route<Params>({
      method: 'get',
      path: '/samples/:accession/reports/:version/pdf',
      summary: 'A released report version as PDF/A-2b, byte for byte as released (its SHA-256 in the ETag)',
      tag: TAG,
      roles: 'any',
      access: READERS,
      params: reportParams,
      response: reportPdf['application/pdf'],
      responseType: 'application/pdf',
      problems: [409],
      handler: async ({ params, actor, ctx }) => {
        const sample = await loadSample(db, params.accession);
        const row = await loadReport(db, params.accession, params.version);
        const { patientIds } = await requireReportAccess(deps, sample, actor, ctx, [row]);
        if (row.state !== 'released')
          throw problems.conflict('report-not-released', `report v${row.version} of ${row.accession} is not released yet`);
        const { pdf } = await db('reports').where({ id: row.id }).first('pdf');
        await logReportRead(deps, actor, ctx, 'report', patientIds, [row.id]);
        ctx.set('Content-Disposition', `attachment; filename="report-${row.accession}-v${row.version}.pdf"`);
        ctx.set('Cache-Control', 'no-store');
        ctx.set('ETag', `"${row.pdf_sha256}"`);
        ctx.type = 'application/pdf';
        ctx.body = pdf as Buffer;
      },
    }),
    route<Params, Record<string, never>, z.infer<typeof releaseReportBody>>({
      method: 'post',
      path: '/samples/:accession/reports/:version/release',
      summary:
        'Release a report version (lab director, signature meaning "responsibility" over its contentHash): 409 while a test is unverified or once released; the same requestId again answers as the first',
      tag: TAG,
      roles: ['lab_director'],
      params: reportParams,
      body: releaseReportBody,
      response: reportAnswer,
      problems: [403, 409, 422, 423],
      handler: async ({ params, body, actor, ctx }) => {
        const sample = await loadSample(db, params.accession);
        // The answer shows the report's content: a read of PHI like any other.
        const answer = async (report: ReportRow) => {
          const { patientIds } = await requireReportAccess(deps, sample, actor, ctx, [report]);
          await logReportRead(deps, actor, ctx, 'report', patientIds, [report.id]);
          ctx.body = await reportView(db, report);
        };
        const row: ReportRow | undefined = await db('reports').where({ accession: params.accession, version: params.version }).first();
        if (row?.state === 'released') {
          if (body.requestId && row.release_request_id === body.requestId) {
            await answer(row);
            return;
          }
          throw problems.conflict('report-released', `report v${row.version} of ${row.accession} is already released`);
        }
        const readiness = await assembleReportContent(db, sample.id, row ? await correctionOf(db, row) : null);
        if (readiness.unverified.length) {
          throw problems.conflict(
            'tests-unverified',
            `the report cannot be released while tests are unverified: ${readiness.unverified.map((u) => `${u.test} (${u.state})`).join(', ')}`,
            { tests: readiness.unverified },
          );
        }
        if (!row) throw problems.conflict('report-not-ready', `report v${params.version} of ${params.accession} is not assembled (yet)`);
        if (body.signature.meaning !== 'responsibility') {
          throw problems.unprocessable('wrong-signature-meaning', `a release means "responsibility", not "${body.signature.meaning}"`);
        }
        if (body.signature.contentHash !== readiness.contentHash) {
          throw problems.conflict('stale-content-hash', 'the report changed since it was read; read it again and sign what it now shows');
        }
        await requireGate(deps, actor, { activity: RESULT_RELEASE, roles: ['lab_director'] }, { entityType: 'report', entityId: row.workflow_id });
        const signature = await verifySigner(deps, actor, body.signature, { entityType: 'report', entityId: row.workflow_id });
        const grant = await grantAction(deps, actor, {
          workflowId: row.workflow_id,
          action: REPORT_RELEASE,
          args: boundReportReleaseArgs({ signature }),
          signature,
        });
        await deps.temporal.workflow.getHandle(row.workflow_id).executeUpdate(releaseReportUpdate, {
          args: [{ actor, grant, signature, ...(body.requestId ? { requestId: body.requestId } : {}) }],
          ...(body.requestId ? { updateId: `release:${body.requestId}` } : {}),
        });
        await answer(await loadReport(db, params.accession, params.version));
      },
    }),
    route<Params, Record<string, never>, z.infer<typeof correctReportBody>>({
      method: 'post',
      path: '/samples/:accession/reports/:version/correct',
      summary:
        'Correct a released report (lab director, reason required): starts v<n+1>, marked CORRECTED with the reason, which the lab director then releases with a signature; v<n> stays as released',
      tag: TAG,
      roles: ['lab_director'],
      params: reportParams,
      body: correctReportBody,
      response: { 202: correctionStarted },
      problems: [409],
      handler: async ({ params, body, actor, ctx }) => {
        const sample = await loadSample(db, params.accession);
        const row = await loadReport(db, params.accession, params.version);
        if (row.state !== 'released')
          throw problems.conflict('report-not-released', `report v${row.version} is not released; release it instead`);
        const version = row.version + 1;
        const workflowId = workflowIds.report(row.accession, version);
        const input: ReportInput = { sampleId: sample.id, accession: row.accession, version, corrects: row.id };
        // The run of v<n+1>, started once: a start that failed after its row was written is made good by the next
        // request, and a finished run is never started again.
        const startRun = () =>
          deps.temporal.workflow
            .start('reportWorkflow', {
              taskQueue: deps.config.taskQueue,
              workflowId,
              args: [input],
              workflowIdConflictPolicy: 'USE_EXISTING',
              workflowIdReusePolicy: 'REJECT_DUPLICATE',
            })
            .catch((err: unknown) => {
              if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
            });
        await db.transaction(async (trx) => {
          // Locked, so two corrections of one version at once answer one 202 and one 409.
          await trx('reports').where({ id: row.id }).forNoKeyUpdate().first('id');
          const already = await trx('reports').where({ corrects_report_id: row.id }).first('version', 'state');
          if (already) {
            if (already.state !== 'released') await startRun();
            throw problems.conflict('report-corrected', `report v${row.version} was already corrected by v${already.version}`);
          }
          await trx('reports').insert({
            workflow_id: workflowId,
            sample_id: sample.id,
            accession: row.accession,
            version,
            corrects_report_id: row.id,
            correction_reason: body.reason,
            correction_requested_by: actor.userId,
          });
          await appendAudit(trx, {
            actorId: actor.userId,
            actor: actor.username,
            action: 'report.correction_requested',
            entityType: 'report',
            entityId: workflowId,
            details: { accession: row.accession, version, corrects: row.version },
          });
        });
        await startRun();
        const location = `/api/v1/samples/${row.accession}/reports/v${version}`;
        ctx.status = 202;
        ctx.set('Location', location);
        ctx.body = { workflowId, version, corrects: row.version, location };
      },
    }),
  ];
}
