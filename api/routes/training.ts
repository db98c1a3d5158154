import { assignmentStateQuery, signOffUpdate } from '../../common/training';
import { findDocument } from '../../db/documents';
import { encodeCursor } from '../../db/keyset';
import { documentMatrix, findAssignment, findRequirement, governingDocuments, listMyTraining, roleMatrix, setGoverningDocuments } from '../../db/training';
import { trainingIds } from '../../common/training';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, updateRoute, type RouteSpec } from '../route';
import * as R from '../schemas/responses';
import { documentParams } from '../schemas/documents';
import { activityParams, assignmentParams, governingBody, matrixQuery, myTrainingQuery, roleParams, signOffBody } from '../schemas/training';
import { signOffArgs } from '../services/training';
import { assignmentRun } from '../temporal/training';

const tag = 'training';
const OVERSEERS = ['qa_manager', 'document_control'] as const;

/** A keyset page: the next cursor names the last row served. */
const keysetBody = <T extends { id: string }>(page: { items: T[]; more: boolean }, limit: number, sort: string) => {
  const last = page.items[page.items.length - 1];
  return {
    items: page.items.map(({ id: _id, ...rest }) => rest),
    limit,
    next: page.more && last ? encodeCursor({ sort, id: last.id }) : null,
  };
};

/** Training on every effective version: my assignments, the sign-off, the matrices, and what governs gated work. */
export function trainingRoutes(deps: ApiDeps): RouteSpec[] {
  const { db } = deps;
  const requireDocument = async (number: string) => (await findDocument(db, number)) ?? Promise.reject(problems.notFound(`document ${number}`));

  return [
    route({
      method: 'get',
      path: '/me/training',
      response: R.keysetPage(R.trainingAssignment),
      summary: 'My training assignments, soonest due first (open ones; all=true for every state), keyset paged',
      tag,
      roles: 'any',
      query: myTrainingQuery,
      handler: async ({ query, actor, ctx }) => {
        const page = await listMyTraining(db, actor.userId, { all: query.all, limit: query.limit, cursor: query.after });
        ctx.body = keysetBody(page, query.limit, 'my-training');
      },
    }),
    route({
      method: 'get',
      path: '/training/assignments/:username/:number/:version',
      response: R.trainingAssignment,
      summary: "One person's assignment on a version (their own; QA and document control see everyone's)",
      tag,
      roles: 'any',
      params: assignmentParams,
      handler: async ({ params, actor, ctx }) => {
        const row = await findAssignment(db, trainingIds.assignment(params.username, params.number, params.version));
        if (!row) throw problems.notFound(`training of ${params.username} on ${params.number} v${params.version}`);
        if (row.userId !== actor.userId && !OVERSEERS.some((r) => actor.roles.includes(r))) {
          throw problems.forbidden("only QA and document control see other people's training");
        }
        const { id: _id, userId: _user, ...view } = row;
        ctx.body = view;
      },
    }),
    updateRoute({
      method: 'post',
      path: '/training/assignments/:username/:number/:version/sign-off',
      response: R.trainingRunState,
      problems: [423],
      summary: 'Sign my own assignment as read and understood (electronic signature: password, meaning, the text hash); never on behalf of anyone',
      tag,
      roles: 'any',
      params: assignmentParams,
      body: signOffBody,
      run: (params) => assignmentRun(deps.temporal, trainingIds.assignment(params.username, params.number, params.version)),
      update: signOffUpdate,
      toArgs: async ({ params, body, actor }) => (await signOffArgs(deps, actor, params, body)).args,
    }),
    route({
      method: 'get',
      path: '/training/assignments/:username/:number/:version/run',
      response: R.trainingRunState,
      summary: "An assignment's run as it stands (stage, due date, reminded, escalated)",
      tag,
      roles: OVERSEERS,
      params: assignmentParams,
      handler: async ({ params, ctx }) => {
        ctx.body = await assignmentRun(deps.temporal, trainingIds.assignment(params.username, params.number, params.version)).query(assignmentStateQuery);
      },
    }),
    route({
      method: 'get',
      path: '/documents/:number/training-requirement',
      response: R.trainingRequirement,
      summary: "The document's training requirement in force (roles, due period, revision policy, grace policy)",
      tag,
      roles: 'any',
      params: documentParams,
      handler: async ({ params, ctx }) => {
        const document = await requireDocument(params.number);
        const requirement = await findRequirement(db, document.id);
        if (!requirement) throw problems.notFound(`a training requirement of ${params.number}`);
        ctx.body = requirement;
      },
    }),
    route({
      method: 'get',
      path: '/training/matrix/documents/:number',
      response: R.keysetPage(R.documentMatrixRow),
      summary: 'Training matrix of a document: each person its requirement names, their standing on the effective version, keyset paged by username',
      tag,
      roles: OVERSEERS,
      params: documentParams,
      query: matrixQuery,
      handler: async ({ params, query, ctx }) => {
        const document = await requireDocument(params.number);
        const page = await documentMatrix(db, document.id, { limit: query.limit, cursor: query.after });
        ctx.body = keysetBody(page, query.limit, `matrix:${params.number}`);
      },
    }),
    route({
      method: 'get',
      path: '/training/matrix/roles/:role',
      response: R.keysetPage(R.roleMatrixRow),
      summary: 'Training matrix of a role: each active holder, with every document whose requirement names the role, keyset paged by username',
      tag,
      roles: OVERSEERS,
      params: roleParams,
      query: matrixQuery,
      handler: async ({ params, query, ctx }) => {
        const page = await roleMatrix(db, params.role, { limit: query.limit, cursor: query.after });
        ctx.body = keysetBody(page, query.limit, `role:${params.role}`);
      },
    }),
    route({
      method: 'get',
      path: '/gate/activities/:activity/governing-documents',
      response: R.governingDocuments,
      summary: 'The controlled documents whose effective version a person must be trained on before doing the activity',
      tag,
      roles: 'any',
      params: activityParams,
      handler: async ({ params, ctx }) => {
        ctx.body = { activity: params.activity, documents: await governingDocuments(db, params.activity) };
      },
    }),
    route({
      method: 'put',
      path: '/gate/activities/:activity/governing-documents',
      response: R.governingDocuments,
      problems: [422],
      summary: 'Set the controlled documents governing an activity (document control or QA), e.g. document.review.sop, capa.verify_effectiveness',
      tag,
      roles: OVERSEERS,
      params: activityParams,
      body: governingBody,
      handler: async ({ params, body, actor, ctx }) => {
        const numbers = [...new Set(body.documents)];
        const rows = await db('documents').whereIn('number', numbers).select('id', 'number');
        const unknown = numbers.filter((n) => !rows.some((r: { number: string }) => r.number === n));
        if (unknown.length) {
          throw problems.unprocessable('unknown-document', `no document ${unknown.join(', ')}`, {
            errors: unknown.map((n) => ({ field: 'body.documents', detail: `unknown document ${n}` })),
          });
        }
        const documents = await setGoverningDocuments(db, params.activity, rows.map((r: { id: string }) => r.id), actor);
        ctx.body = { activity: params.activity, documents };
      },
    }),
  ];
}
