import type { z } from 'zod';
import { requireRole } from '../auth';
import { findCapa } from '../../db/capa';
import type { ApiDeps } from '../deps';
import { exportRecord, type ExportTarget } from '../exports/export-record';
import { capaRecord, documentVersionRecord, sampleRecord, summaryRecord } from '../exports/load-records';
import { requirePatientAccess } from '../patient-access';
import { findSummaryJob } from '../../db/summaries';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import * as R from '../schemas/responses';
import { capaParams } from '../schemas/capa';
import { versionParams } from '../schemas/documents';
import { exportQuery } from '../schemas/exports';

import { accessionParams } from '../schemas/sample-intake';
import { jobParams } from '../schemas/summaries';
import { loadVersion } from '../services/document-approval';
import { loadSample, requireSampleAccess } from '../services/sample-intake';

type ExportQuery = z.infer<typeof exportQuery>;

const tag = 'records out';
const formats = 'format=pdf (PDF/A-2b), csv or json (the default)';

/** Who may read a document version's copy (its trail is the document's): QA and document control. */
export const DOCUMENT_READERS = ['qa_manager', 'document_control'] as const;
/** Who may read a CAPA's copy with its trail: QA. */
export const CAPA_READERS = ['qa_manager'] as const;

/** An export route: the spec without its handler, and the target the path names. */
function exportRoute<P>(
  deps: ApiDeps,
  spec: Pick<RouteSpec<P>, 'path' | 'summary' | 'access' | 'params'>,
  target: (params: P) => Promise<ExportTarget> | ExportTarget,
): RouteSpec {
  return route<P, ExportQuery>({
    ...spec,
    method: 'get',
    response: R.exportedRecord,
    alternatives: R.exportFiles,
    tag,
    // Who may read is judged per record inside, so that a refusal is audited before it is answered.
    roles: 'any',
    query: exportQuery,
    handler: async ({ params, query, actor, ctx }) => exportRecord(deps, actor, ctx, await target(params), query.format),
  });
}

export function exportRoutes(deps: ApiDeps): RouteSpec[] {
  const { db } = deps;
  return [
    exportRoute(
      deps,
      {
        path: '/documents/:number/versions/:version/export',
        summary: `A complete copy of a document version: content, state, signatures, the document's whole trail (${formats})`,
        access: 'Roles: qa_manager, document_control (admin always). A refusal is audited.',
        params: versionParams,
      },
      (params) => ({
        kind: 'document_version',
        entityType: 'document',
        entityId: params.number,
        phi: null,
        authorize: (who) => requireRole(who, DOCUMENT_READERS),
        load: async (who) => documentVersionRecord(deps, who, await loadVersion(db, params.number, params.version)),
      }),
    ),
    exportRoute(
      deps,
      {
        path: '/capas/:number/export',
        summary: `A complete copy of a CAPA: its record, stage, signatures and whole trail (${formats})`,
        access: 'Role: qa_manager (admin always). A refusal is audited.',
        params: capaParams,
      },
      (params) => ({
        kind: 'capa',
        entityType: 'capa',
        entityId: params.number,
        phi: null,
        authorize: (who) => requireRole(who, CAPA_READERS),
        load: async (who) => {
          if (!(await findCapa(db, params.number))) throw problems.notFound(`CAPA ${params.number}`);
          return capaRecord(deps, who, params.number);
        },
      }),
    ),
    exportRoute(
      deps,
      {
        path: '/samples/:accession/export',
        summary: `A complete copy of a sample with its patient identification and chain of custody, signatures and whole trail (${formats})`,
        access:
          'Lab technicians, lab directors, admins, and the clinician who submitted the sample. PHI: every export and every refusal is a PHI access event; a refusal is audited.',
        params: accessionParams,
      },
      async (params) => {
        const row = await loadSample(db, params.accession);
        return {
          kind: 'sample',
          entityType: 'sample',
          entityId: row.accession,
          phi: { kind: 'sample_export', patientIds: [] },
          authorize: (who) => requireSampleAccess(row, who),
          load: (who) => sampleRecord(deps, who, row),
        };
      },
    ),
    exportRoute(
      deps,
      {
        path: '/summary-jobs/:jobId/export',
        summary: `A complete copy of a SOAP-note summary: its text, provenance, review signatures and the job's whole trail (${formats})`,
        access:
          "Clinicians on the patient's care team only; admin does not pass. PHI: every export and every refusal is a PHI access event; a refusal is audited.",
        params: jobParams,
      },
      async (params) => {
        const job = await findSummaryJob(db, params.jobId);
        if (!job) throw problems.notFound(`summary job ${params.jobId}`);
        return {
          kind: 'summary',
          entityType: 'patient',
          entityId: job.patient_id,
          recordId: job.workflow_id,
          phi: { kind: 'summary_export', patientIds: [job.patient_id] },
          authorize: (who) => requirePatientAccess(db, who, job.patient_id),
          load: (who) => summaryRecord(deps, who, job),
        };
      },
    ),
  ];
}
