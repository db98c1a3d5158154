import { auditTrail } from '../../db/audit';
import {
  addVersion,
  createDocument,
  DocumentConflict,
  findContent,
  findDocument,
  listDocuments,
  listSignatures,
  listVersions,
} from '../../db/documents';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import { contentBody, createDocumentBody, documentParams, listDocumentsQuery, versionParams } from '../schemas/documents';
import { loadVersion, versionView } from '../services/document-approval';

const WRITERS = ['author', 'document_control'] as const;

function conflictProblem(err: unknown): never {
  if (err instanceof DocumentConflict) throw problems.conflict(err.kind, err.message, err.extra);
  throw err;
}

export function documentRoutes(deps: ApiDeps): RouteSpec[] {
  const { db } = deps;
  const requireDocument = async (number: string) =>
    (await findDocument(db, number)) ?? Promise.reject(problems.notFound(`document ${number}`));

  return [
    route({
      method: 'post',
      path: '/documents',
      summary: 'Create a controlled document (its number is assigned when not given)',
      tag: 'documents',
      roles: WRITERS,
      body: createDocumentBody,
      handler: async ({ body, actor, ctx }) => {
        const row = await createDocument(db, actor, body).catch(conflictProblem);
        ctx.status = 201;
        ctx.set('Location', `/api/v1/documents/${row.number}`);
        ctx.body = row;
      },
    }),
    route({
      method: 'get',
      path: '/documents',
      summary: 'List documents with their latest and effective versions',
      tag: 'documents',
      roles: 'any',
      query: listDocumentsQuery,
      handler: async ({ query, ctx }) => {
        const { total, items } = await listDocuments(db, query);
        ctx.body = { total, limit: query.limit, offset: query.offset, items };
      },
    }),
    route({
      method: 'get',
      path: '/documents/:number',
      summary: 'A document and all its versions',
      tag: 'documents',
      roles: 'any',
      params: documentParams,
      handler: async ({ params, ctx }) => {
        const document = await requireDocument(params.number);
        ctx.body = { ...document, versions: await listVersions(db, document.id) };
      },
    }),
    route({
      method: 'post',
      path: '/documents/:number/versions',
      summary: 'Add a new version (draft) with its text; refused while another revision is open',
      tag: 'documents',
      roles: WRITERS,
      params: documentParams,
      body: contentBody,
      handler: async ({ params, body, actor, ctx }) => {
        const document = await requireDocument(params.number);
        const row = await addVersion(db, actor, document.id, document.number, body.content, body.changeSummary).catch(conflictProblem);
        ctx.status = 201;
        ctx.set('Location', `/api/v1/documents/${document.number}/versions/${row.version}`);
        ctx.body = { number: document.number, version: row.version, contentHash: row.content_hash, state: row.state };
      },
    }),
    route({
      method: 'get',
      path: '/documents/:number/versions/:version',
      summary: "A version's state: live from its run while running, from the record afterwards",
      tag: 'documents',
      roles: 'any',
      params: versionParams,
      handler: async ({ params, ctx }) => {
        ctx.body = await versionView(deps, await loadVersion(db, params.number, params.version));
      },
    }),
    route({
      method: 'get',
      path: '/documents/:number/versions/:version/content',
      summary: "A version's text as it stands (text/plain); its ETag is the content hash",
      tag: 'documents',
      roles: 'any',
      params: versionParams,
      handler: async ({ params, ctx }) => {
        const version = await loadVersion(db, params.number, params.version);
        const content = await findContent(db, version.content_hash);
        ctx.set('ETag', `"${version.content_hash}"`);
        ctx.type = 'text/plain; charset=utf-8';
        ctx.body = content;
      },
    }),
    route({
      method: 'get',
      path: '/documents/:number/versions/:version/signatures',
      summary: 'Electronic signatures on a version, including those voided by a revision',
      tag: 'documents',
      roles: 'any',
      params: versionParams,
      handler: async ({ params, ctx }) => {
        const version = await loadVersion(db, params.number, params.version);
        ctx.body = { items: await listSignatures(db, version.id) };
      },
    }),
    route({
      method: 'get',
      path: '/documents/:number/audit',
      summary: "The document's audit trail, oldest first",
      tag: 'documents',
      roles: ['qa_manager', 'document_control'],
      params: documentParams,
      handler: async ({ params, ctx }) => {
        const document = await requireDocument(params.number);
        ctx.body = { items: await auditTrail(db, 'document', [document.number]) };
      },
    }),
  ];
}
