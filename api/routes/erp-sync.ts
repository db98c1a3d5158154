import { discardDeadLetter, listCursors, resetCursor } from '../../db/erp-operations';
import { getRun, listDeadLetters, listRuns } from '../../db/erp-sync';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import * as R from '../schemas/responses';
import { retryDeadLetter, startSync } from '../services/erp-sync';
import { decideOnSupplier, supplierQualificationView } from '../services/supplier-qualification';
import {
  deadLetterParams,
  deadLettersQuery,
  decisionBody,
  decisionParams,
  discardBody,
  entityParams,
  resetCursorBody,
  runParams,
  runsQuery,
  supplierParams,
  triggerSyncBody,
} from '../schemas/erp-sync';

const OPERATORS = ['it_operator'] as const;
const VIEWERS = ['it_operator', 'qa_manager'] as const;

/** The ERP sync (runs, cursors, dead letters) and QA's supplier qualification, which writes back to the ERP. */
export function erpSyncRoutes(deps: ApiDeps): RouteSpec[] {
  const { db } = deps;
  return [
    route({
      method: 'post',
      path: '/erp-sync/runs',
      response: { 200: R.erpRun, 202: R.erpRun },
      summary: 'Start an ERP sync (all entities or one; incremental or reconcile); 200 with the running one if already going',
      tag: 'erp',
      roles: OPERATORS,
      body: triggerSyncBody,
      handler: async ({ body, actor, ctx }) => {
        const answer = await startSync(deps, body.entity ?? 'all', body.mode, actor.username);
        ctx.status = answer.status;
        if (answer.body.syncRunId) ctx.set('Location', `/api/v1/erp-sync/runs/${answer.body.syncRunId}`);
        ctx.body = answer.body;
      },
    }),
    route({
      method: 'get',
      path: '/erp-sync/runs',
      response: R.page(R.erpRun),
      summary: 'Sync runs, newest first, with counts per entity (and drift for reconciliations)',
      tag: 'erp',
      roles: VIEWERS,
      query: runsQuery,
      handler: async ({ query, ctx }) => {
        ctx.body = { limit: query.limit, offset: query.offset, items: await listRuns(db, query) };
      },
    }),
    route({
      method: 'get',
      path: '/erp-sync/runs/:id',
      response: R.erpRun,
      summary: 'One sync run',
      tag: 'erp',
      roles: VIEWERS,
      params: runParams,
      handler: async ({ params, ctx }) => {
        const run = await getRun(db, params.id);
        if (!run) throw problems.notFound(`sync run ${params.id}`);
        ctx.body = run;
      },
    }),
    route({
      method: 'get',
      path: '/erp-sync/cursors',
      response: R.list(R.erpCursor),
      summary: "Each entity's cursor: the last (modified, name) stored",
      tag: 'erp',
      roles: VIEWERS,
      handler: async ({ ctx }) => {
        ctx.body = { items: await listCursors(db) };
      },
    }),
    route({
      method: 'post',
      path: '/erp-sync/cursors/:entity/reset',
      response: R.erpCursor, problems: [409],
      summary: "Move an entity's cursor back (to the start, or to a given position); admins, audited",
      tag: 'erp',
      roles: ['admin'],
      params: entityParams,
      body: resetCursorBody,
      handler: async ({ params, body, actor, ctx }) => {
        ctx.body = await resetCursor(db, actor, params.entity, body.to, body.reason);
      },
    }),
    route({
      method: 'get',
      path: '/erp-sync/dead-letters',
      response: R.page(R.deadLetter),
      summary: 'Records the ERP or labflow refused, with the reason',
      tag: 'erp',
      roles: VIEWERS,
      query: deadLettersQuery,
      handler: async ({ query, ctx }) => {
        ctx.body = { limit: query.limit, offset: query.offset, items: await listDeadLetters(db, query) };
      },
    }),
    route({
      method: 'post',
      path: '/erp-sync/dead-letters/:id/retry',
      response: { 202: R.deadLetter }, problems: [409],
      summary: 'Retry a dead letter: inbound ones are re-fetched by a sync of their entity; outbound ones re-written',
      tag: 'erp',
      roles: OPERATORS,
      params: deadLetterParams,
      handler: async ({ params, actor, ctx }) => {
        const retried = await retryDeadLetter(deps, actor, params.id);
        ctx.status = 202;
        ctx.body = retried;
      },
    }),
    route({
      method: 'post',
      path: '/erp-sync/dead-letters/:id/discard',
      response: R.deadLetter, problems: [409],
      summary: 'Discard a dead letter (reason required, audited)',
      tag: 'erp',
      roles: OPERATORS,
      params: deadLetterParams,
      body: discardBody,
      handler: async ({ params, body, actor, ctx }) => {
        const outcome = await discardDeadLetter(db, actor, params.id, body.reason);
        if ('notFound' in outcome) throw problems.notFound(`dead letter ${params.id}`);
        if ('closed' in outcome) throw problems.conflict('dead-letter-closed', `the dead letter is ${outcome.closed}`);
        ctx.body = outcome.discarded;
      },
    }),
    route({
      method: 'get',
      path: '/suppliers/:supplier/qualification',
      response: R.supplierQualification,
      summary: "A supplier's qualification: status, decisions and whether the ERP has it",
      tag: 'erp',
      roles: ['qa_manager', 'it_operator'],
      params: supplierParams,
      handler: async ({ params, ctx }) => {
        ctx.body = await supplierQualificationView(deps, params.supplier);
      },
    }),
    route({
      method: 'post',
      path: '/suppliers/:supplier/qualification/:decision',
      response: R.supplierQualification, problems: [409, 422],
      summary: 'QA approves, suspends or disqualifies a supplier; the hold status is then written to the ERP',
      tag: 'erp',
      roles: ['qa_manager'],
      params: decisionParams,
      body: decisionBody,
      handler: async ({ params, body, actor, ctx }) => {
        ctx.body = await decideOnSupplier(deps, actor, params.supplier, params.decision, body.reason);
      },
    }),
  ];
}
