import type { z } from 'zod';
import type { ApiDeps } from '../deps';
import { route, type RouteSpec } from '../route';
import * as R from '../schemas/responses';
import { bulkExportBody, bulkExportParams } from '../schemas/exports';
import { bulkExportLocation, bulkExportStatus, downloadBulkExport, startBulkExport } from '../services/bulk-exports';

const tag = 'records out';
type Params = z.infer<typeof bulkExportParams>;

export function bulkExportRoutes(deps: ApiDeps): RouteSpec[] {
  return [
    route<Record<string, never>, Record<string, never>, z.infer<typeof bulkExportBody>>({
      method: 'post',
      path: '/bulk-exports',
      summary:
        'Export every CAPA initiated in a year or every sample registered in a month into one file, as a run; answers 202 with the export to poll',
      access:
        'CAPAs: qa_manager; samples: lab_technician, lab_director (admin always). A refusal (403, or 422 past BULK_EXPORT_MAX_RECORDS) is audited.',
      tag,
      // Who may export is judged per kind inside, so that a refusal is audited before it is answered.
      roles: 'any',
      body: bulkExportBody,
      response: { 202: R.bulkExportStarted },
      problems: [422],
      handler: async ({ body, actor, ctx }) => {
        const started = await startBulkExport(deps, actor, body);
        ctx.status = 202;
        ctx.set('Location', bulkExportLocation(started.id));
        ctx.body = started;
      },
    }),
    route<Params>({
      method: 'get',
      path: '/bulk-exports/:id',
      summary: "A bulk export's progress (records copied of the total), its state, and its file's link once written",
      access: 'The person who asked for it, while they may still read its records.',
      tag,
      roles: 'any',
      params: bulkExportParams,
      response: R.bulkExport,
      handler: async ({ params, actor, ctx }) => {
        ctx.body = await bulkExportStatus(deps, actor, params.id);
      },
    }),
    route<Params>({
      method: 'get',
      path: '/bulk-exports/:id/file',
      summary:
        "A bulk export's file (PDF/A-2b, CSV or JSON as asked); 409 while it is being written or when it failed, 410 once it expired (BULK_EXPORT_RETENTION)",
      access:
        'The person who asked for it, while they may still read its records. Every download is audited; a sample bundle is PHI: each download (or refusal) is a PHI access event.',
      tag,
      roles: 'any',
      params: bulkExportParams,
      response: R.bulkExportBundle,
      alternatives: R.exportFiles,
      problems: [409, 410],
      handler: async ({ params, actor, ctx }) => downloadBulkExport(deps, actor, ctx, params.id),
    }),
  ];
}
