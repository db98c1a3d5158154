import { WithStartWorkflowOperation } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { ErpEntity } from '../../common/erp-sync';
import { workflowIds } from '../../common/ids';
import { DECISION_UPDATES, retryErpWriteSignal, supplierQualificationQuery } from '../../common/supplier-qualification';
import { appendAudit } from '../../db/audit';
import { getDeadLetter, getRun, listDeadLetters, listRuns } from '../../db/erp-sync';
import type { erpSyncWorkflow } from '../../workflows/erp-sync';
import type { supplierQualificationWorkflow } from '../../workflows/supplier-qualification';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
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
export function erpSyncRoutes({ db, temporal, config }: ApiDeps): RouteSpec[] {
  /** Starts erp-sync:<scope>, or answers with the run already going (a repeated trigger is satisfied by it). */
  async function startSync(scope: 'all' | ErpEntity, mode: 'incremental' | 'reconcile', requestedBy: string) {
    const workflowId = workflowIds.erpSync(scope);
    try {
      const handle = await temporal.workflow.start<typeof erpSyncWorkflow>('erpSyncWorkflow', {
        workflowId,
        taskQueue: config.taskQueue,
        args: [{ scope, mode, requestedBy }],
        workflowIdConflictPolicy: 'FAIL',
      });
      return { status: 202, body: { workflowId, syncRunId: handle.firstExecutionRunId, state: 'started' } };
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      // The sync run's ID is the first run of the chain (it continues as new), whatever its record says: the record
      // is written by the run's first activity and closed by its last, a moment before the run itself closes.
      const description = await temporal.workflow.getHandle(workflowId).describe();
      const syncRunId =
        description.raw.workflowExecutionInfo?.firstRunId ||
        ((await db('erp_sync_runs').where({ workflow_id: workflowId, state: 'running' }).first('id'))?.id ?? null);
      return { status: 200, body: { workflowId, syncRunId, runId: description.runId, state: 'already_running' } };
    }
  }

  return [
    route({
      method: 'post',
      path: '/erp-sync/runs',
      summary: 'Start an ERP sync (all entities or one; incremental or reconcile); 200 with the running one if already going',
      tag: 'erp',
      roles: OPERATORS,
      body: triggerSyncBody,
      handler: async ({ body, actor, ctx }) => {
        const answer = await startSync(body.entity ?? 'all', body.mode, actor.username);
        ctx.status = answer.status;
        if (answer.body.syncRunId) ctx.set('Location', `/api/v1/erp-sync/runs/${answer.body.syncRunId}`);
        ctx.body = answer.body;
      },
    }),
    route({
      method: 'get',
      path: '/erp-sync/runs',
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
      summary: "Each entity's cursor: the last (modified, name) stored",
      tag: 'erp',
      roles: VIEWERS,
      handler: async ({ ctx }) => {
        ctx.body = {
          items: await db('erp_sync_cursors').select('entity', 'cursor_modified', 'cursor_name', 'updated_at').orderBy('entity'),
        };
      },
    }),
    route({
      method: 'post',
      path: '/erp-sync/cursors/:entity/reset',
      summary: "Move an entity's cursor back (to the start, or to a given position); admins, audited",
      tag: 'erp',
      roles: ['admin'],
      params: entityParams,
      body: resetCursorBody,
      handler: async ({ params, body, actor, ctx }) => {
        ctx.body = await db.transaction(async (trx) => {
          const before = await trx('erp_sync_cursors').where({ entity: params.entity }).first('cursor_modified', 'cursor_name');
          await trx('erp_sync_cursors')
            .insert({ entity: params.entity, cursor_modified: body.to?.modified ?? null, cursor_name: body.to?.name ?? null })
            .onConflict('entity')
            .merge({ cursor_modified: body.to?.modified ?? null, cursor_name: body.to?.name ?? null, updated_at: trx.fn.now() });
          await appendAudit(trx, {
            actorId: actor.userId,
            actor: actor.username,
            action: 'erp.cursor_reset',
            entityType: 'erp_sync',
            entityId: params.entity,
            details: { reason: body.reason, before: before ?? null, to: body.to ?? null },
          });
          return { entity: params.entity, cursor_modified: body.to?.modified ?? null, cursor_name: body.to?.name ?? null };
        });
      },
    }),
    route({
      method: 'get',
      path: '/erp-sync/dead-letters',
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
      summary: 'Retry a dead letter: inbound ones are re-fetched by a sync of their entity; outbound ones re-written',
      tag: 'erp',
      roles: OPERATORS,
      params: deadLetterParams,
      handler: async ({ params, actor, ctx }) => {
        const letter = await getDeadLetter(db, params.id);
        if (!letter) throw problems.notFound(`dead letter ${params.id}`);
        if (!['open', 'retry_requested'].includes(letter.state))
          throw problems.conflict('dead-letter-closed', `the dead letter is ${letter.state}`);
        await db.transaction(async (trx) => {
          await trx('erp_dead_letters').where({ id: letter.id }).update({ state: 'retry_requested' });
          await appendAudit(trx, {
            actorId: actor.userId,
            actor: actor.username,
            action: 'erp.dead_letter_retry_requested',
            entityType: 'erp_dead_letter',
            entityId: letter.id,
            details: { entity: letter.entity, erpName: letter.erp_name, direction: letter.direction },
          });
        });
        if (letter.direction === 'outbound') {
          await temporal.workflow.getHandle(workflowIds.supplierQualification(letter.erp_name)).signal(retryErpWriteSignal);
          ctx.status = 202;
          ctx.body = { id: letter.id, state: 'retry_requested', workflowId: workflowIds.supplierQualification(letter.erp_name) };
          return;
        }
        const answer = await startSync(letter.entity, 'incremental', actor.username);
        ctx.status = 202;
        ctx.body = { id: letter.id, state: 'retry_requested', sync: answer.body };
      },
    }),
    route({
      method: 'post',
      path: '/erp-sync/dead-letters/:id/discard',
      summary: 'Discard a dead letter (reason required, audited)',
      tag: 'erp',
      roles: OPERATORS,
      params: deadLetterParams,
      body: discardBody,
      handler: async ({ params, body, actor, ctx }) => {
        ctx.body = await db.transaction(async (trx) => {
          const letter = await trx('erp_dead_letters').where({ id: params.id }).forUpdate().first();
          if (!letter) throw problems.notFound(`dead letter ${params.id}`);
          if (!['open', 'retry_requested'].includes(letter.state))
            throw problems.conflict('dead-letter-closed', `the dead letter is ${letter.state}`);
          const [row] = await trx('erp_dead_letters')
            .where({ id: letter.id })
            .update({ state: 'discarded', closed_at: trx.fn.now(), closed_by: actor.username, close_reason: body.reason })
            .returning('*');
          await appendAudit(trx, {
            actorId: actor.userId,
            actor: actor.username,
            action: 'erp.dead_letter_discarded',
            entityType: 'erp_dead_letter',
            entityId: letter.id,
            details: { entity: letter.entity, erpName: letter.erp_name, reason: body.reason },
          });
          return row;
        });
      },
    }),
    route({
      method: 'get',
      path: '/suppliers/:supplier/qualification',
      summary: "A supplier's qualification: status, decisions and whether the ERP has it",
      tag: 'erp',
      roles: ['qa_manager', 'it_operator'],
      params: supplierParams,
      handler: async ({ params, ctx }) => {
        const supplier = await db('erp_suppliers')
          .where({ name: params.supplier })
          .first('name', 'supplier_name', 'on_hold', 'hold_type', 'deleted_at');
        if (!supplier) throw problems.notFound(`supplier ${params.supplier}`);
        const projection = await db('supplier_qualifications').where({ supplier: params.supplier }).first();
        let live = null;
        if (projection && projection.status !== 'disqualified') {
          live = await temporal.workflow
            .getHandle(projection.workflow_id)
            .query(supplierQualificationQuery)
            .catch(() => null);
        }
        ctx.body = { supplier, qualification: projection ?? { status: 'pending' }, decisions: live?.decisions ?? null };
      },
    }),
    route({
      method: 'post',
      path: '/suppliers/:supplier/qualification/:decision',
      summary: 'QA approves, suspends or disqualifies a supplier; the hold status is then written to the ERP',
      tag: 'erp',
      roles: ['qa_manager'],
      params: decisionParams,
      body: decisionBody,
      handler: async ({ params, body, actor, ctx }) => {
        const supplier = await db('erp_suppliers').where({ name: params.supplier }).whereNull('deleted_at').first('name');
        if (!supplier) throw problems.notFound(`supplier ${params.supplier}`);
        const current = await db('supplier_qualifications').where({ supplier: params.supplier }).first('status');
        if (current?.status === 'disqualified')
          throw problems.conflict('run-finished', `${params.supplier} is disqualified; nothing more can be done`);
        const workflowId = workflowIds.supplierQualification(params.supplier);
        const start = new WithStartWorkflowOperation<typeof supplierQualificationWorkflow>('supplierQualificationWorkflow', {
          workflowId,
          taskQueue: config.taskQueue,
          // A run that ended otherwise than by disqualification (terminated by an operator) starts again from the projection.
          args: [{ supplier: params.supplier, status: current?.status }],
          workflowIdConflictPolicy: 'USE_EXISTING',
          workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
        });
        ctx.body = await temporal.workflow.executeUpdateWithStart(DECISION_UPDATES[params.decision], {
          args: [{ actor, reason: body.reason }],
          startWorkflowOperation: start,
        });
      },
    }),
  ];
}
