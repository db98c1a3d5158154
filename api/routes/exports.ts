import { requireRole } from '../auth';
import { findCapa } from '../../db/capa';
import type { ApiDeps } from '../deps';
import { exportRecord } from '../exports/export-record';
import { capaRecord, documentVersionRecord, sampleRecord } from '../exports/load-records';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import { capaParams } from '../schemas/capa';
import { versionParams } from '../schemas/documents';
import { exportQuery } from '../schemas/exports';
import { accessionParams } from '../schemas/sample-intake';
import { loadVersion } from '../services/document-approval';
import { loadSample, requireSampleAccess } from '../services/sample-intake';

const tag = 'records out';
const formats = 'format=pdf (PDF/A-2b), csv or json (the default)';

/** Who may read a document version's copy (its trail is the document's): QA and document control. */
export const DOCUMENT_READERS = ['qa_manager', 'document_control'] as const;
/** Who may read a CAPA's copy with its trail: QA. */
export const CAPA_READERS = ['qa_manager'] as const;

export function exportRoutes(deps: ApiDeps): RouteSpec[] {
  const { db } = deps;
  return [
    route({
      method: 'get',
      path: '/documents/:number/versions/:version/export',
      summary: `A complete copy of a document version: content, state, signatures, the document's whole trail (${formats})`,
      tag,
      roles: 'any',
      access: 'Roles: qa_manager, document_control (admin always). A refusal is audited.',
      params: versionParams,
      query: exportQuery,
      handler: async ({ params, query, actor, ctx }) => {
        await exportRecord(
          deps,
          actor,
          ctx,
          {
            kind: 'document_version',
            entityType: 'document',
            entityId: params.number,
            phi: false,
            authorize: (who) => requireRole(who, DOCUMENT_READERS),
            load: async (who) => documentVersionRecord(deps, who, await loadVersion(db, params.number, params.version)),
          },
          query.format,
        );
      },
    }),
    route({
      method: 'get',
      path: '/capas/:number/export',
      summary: `A complete copy of a CAPA: its record, stage, signatures and whole trail (${formats})`,
      tag,
      roles: 'any',
      access: 'Role: qa_manager (admin always). A refusal is audited.',
      params: capaParams,
      query: exportQuery,
      handler: async ({ params, query, actor, ctx }) => {
        await exportRecord(
          deps,
          actor,
          ctx,
          {
            kind: 'capa',
            entityType: 'capa',
            entityId: params.number,
            phi: false,
            authorize: (who) => requireRole(who, CAPA_READERS),
            load: async (who) => {
              if (!(await findCapa(db, params.number))) throw problems.notFound(`CAPA ${params.number}`);
              return capaRecord(deps, who, params.number);
            },
          },
          query.format,
        );
      },
    }),
    route({
      method: 'get',
      path: '/samples/:accession/export',
      summary: `A complete copy of a sample with its patient identification and chain of custody, signatures and whole trail (${formats})`,
      tag,
      roles: 'any',
      access:
        'Lab technicians, lab directors, admins, and the clinician who submitted the sample. PHI: every export and every refusal is a PHI access event; a refusal is audited.',
      params: accessionParams,
      query: exportQuery,
      handler: async ({ params, query, actor, ctx }) => {
        const row = await loadSample(db, params.accession);
        await exportRecord(
          deps,
          actor,
          ctx,
          {
            kind: 'sample',
            entityType: 'sample',
            entityId: row.accession,
            phi: true,
            authorize: (who) => requireSampleAccess(row, who),
            load: (who) => sampleRecord(deps, who, row),
          },
          query.format,
        );
      },
    }),
  ];
}
