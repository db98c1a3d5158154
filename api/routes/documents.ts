import { auditTrail } from '../../db/audit';
import {
  addVersion,
  cancelDraft,
  createDocument,
  DocumentConflict,
  DocumentForbidden,
  findContent,
  findDocument,
  listDocuments,
  listSignatures,
  listVersions,
  updateDocument,
} from '../../db/documents';
import { findUserByUsername } from '../../db/users';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import * as R from '../schemas/responses';
import {
  contentBody,
  createDocumentBody,
  documentParams,
  listDocumentsQuery,
  reasonBody,
  updateDocumentBody,
  versionParams,
} from '../schemas/documents';
import { loadVersion, versionView } from '../services/document-approval';

const WRITERS = ['author', 'document_control'] as const;

function conflictProblem(err: unknown): never {
  if (err instanceof DocumentConflict) throw problems.conflict(err.kind, err.message, err.extra);
  if (err instanceof DocumentForbidden) throw problems.forbidden(err.message);
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
      response: { 201: R.documentRow }, problems: [409],
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
      response: R.documentList,
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
      response: R.documentWithVersions,
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
      method: 'patch',
      path: '/documents/:number',
      response: R.editedDocument, problems: [422],
      summary: "Change a document's title, type or owner (document control); the trail records each old and new value",
      tag: 'documents',
      roles: ['document_control'],
      params: documentParams,
      body: updateDocumentBody,
      handler: async ({ params, body, actor, ctx }) => {
        await requireDocument(params.number);
        const owner = body.owner === undefined ? undefined : await findUserByUsername(db, body.owner);
        if (body.owner !== undefined && !owner) {
          throw problems.unprocessable('unknown-user', `no user "${body.owner}"`, { errors: [{ field: 'body.owner', detail: 'unknown user' }] });
        }
        const { changes } = (await updateDocument(db, actor, params.number, { title: body.title, docType: body.docType, ownerId: owner?.id }))!;
        ctx.body = { ...(await requireDocument(params.number)), changes };
      },
    }),
    route({
      method: 'post',
      path: '/documents/:number/versions/:version/cancel',
      response: R.versionRow, problems: [409],
      summary: 'Cancel a draft nobody submitted (document control, reason required); it is withdrawn and the trail says why',
      tag: 'documents',
      roles: ['document_control'],
      params: versionParams,
      body: reasonBody,
      handler: async ({ params, body, actor, ctx }) => {
        const cancelled = await cancelDraft(db, actor, params.number, params.version, body.reason).catch(conflictProblem);
        if (!cancelled) throw problems.notFound(`version ${params.version} of document ${params.number}`);
        ctx.body = cancelled;
      },
    }),
    route({
      method: 'post',
      path: '/documents/:number/versions',
      response: { 201: R.newVersion }, problems: [409],
      summary: "Add a new version (draft) with its text (the document's owner or document control); refused while another revision is open",
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
      response: R.versionState,
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
      response: R.plainText, responseType: 'text/plain',
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
      response: R.list(R.signatureRow),
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
      response: R.list(R.auditEvent),
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
