import { checklistHistory, precheckOfVersion, saveChecklist } from '../../db/prechecks';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import * as R from '../schemas/responses';
import { docTypeParams, versionParams } from '../schemas/documents';
import { checklistBody } from '../schemas/document-precheck';
import { loadVersion } from '../services/document-approval';

const tag = 'document pre-check';
/** Who configures what the pre-check looks for. */
const CHECKLIST_OWNERS = ['document_control', 'qa_manager'] as const;

/** The advisory compliance pre-check: each version's findings, and the checklist per document type it uses. */
export function documentPrecheckRoutes({ db }: ApiDeps): RouteSpec[] {
  return [
    route({
      method: 'get',
      path: '/documents/:number/versions/:version/precheck',
      response: R.documentPrecheck,
      summary:
        "The compliance pre-check of a submitted version: advisory findings per checklist item with verbatim evidence, what was dropped, provenance",
      tag,
      roles: 'any',
      params: versionParams,
      handler: async ({ params, ctx }) => {
        const version = await loadVersion(db, params.number, params.version);
        const precheck = await precheckOfVersion(db, version.id);
        if (!precheck) throw problems.notFound(`a pre-check of ${params.number} v${params.version}`);
        ctx.body = precheck;
      },
    }),
    route({
      method: 'get',
      path: '/precheck-checklists/:docType',
      response: R.precheckChecklistHistory,
      summary: "A document type's pre-check checklist, every version, newest (the one in use) first",
      tag,
      roles: 'any',
      params: docTypeParams,
      handler: async ({ params, ctx }) => {
        const versions = await checklistHistory(db, params.docType);
        if (!versions.length) throw problems.notFound(`a pre-check checklist for ${params.docType}`);
        ctx.body = { docType: params.docType, versions };
      },
    }),
    route({
      method: 'put',
      path: '/precheck-checklists/:docType',
      response: R.precheckChecklist,
      summary: "Save a new version of a document type's pre-check checklist (document control or QA); audited with old and new items",
      tag,
      roles: CHECKLIST_OWNERS,
      params: docTypeParams,
      body: checklistBody,
      handler: async ({ params, body, actor, ctx }) => {
        const saved = await saveChecklist(db, actor, params.docType, body.items);
        ctx.body = saved;
      },
    }),
  ];
}
