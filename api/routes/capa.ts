import type { UpdateDefinition } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import type { ZodType } from 'zod';
import {
  cancelCapaUpdate,
  capaStateQuery,
  closeCapaUpdate,
  completeActionUpdate,
  containmentUpdate,
  decideExtensionUpdate,
  decidePlanUpdate,
  effectivenessUpdate,
  investigationUpdate,
  linkSourcesUpdate,
  OPEN_CAPA_STAGES,
  reopenCapaUpdate,
  requestExtensionUpdate,
  submitPlanUpdate,
  triageUpdate,
  type CapaState,
} from '../../common/capa';
import { type AssigneeRef } from '../../common/assignees';
import { workflowIds } from '../../common/ids';
import { DECISION_FROM, DECISION_STATUS, type SupplierDecision } from '../../common/supplier-qualification';
import type { Actor, Role } from '../../common/roles';
import { auditTrail } from '../../db/audit';
import { capaActions, capaSources, findCapa, listCapas, openCapasNaming } from '../../db/capa';
import { listSignaturesFor } from '../../db/signatures';
import { notifyCapasOfDeactivation, startCapaRun } from '../capa-runs';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import { verifySigner } from '../signing';
import {
  actionParams,
  capaParams,
  closeBody,
  completeActionBody,
  containmentBody,
  createCapaBody,
  deactivatedBody,
  effectivenessBody,
  extensionBody,
  extensionDecisionBody,
  investigationBody,
  linkSourcesBody,
  listCapasQuery,
  planBody,
  planDecisionBody,
  reasonBody,
  triageBody,
} from '../schemas/capa';

const TAG = 'capa';
const located = (number: string) => `/api/v1/capas/${number}`;

export function capaRoutes(deps: ApiDeps): RouteSpec[] {
  const { db, temporal, config } = deps;
  const handleFor = (number: string) => temporal.workflow.getHandle(workflowIds.capa(number));

  async function activeUser(name: string, field: string): Promise<AssigneeRef & { kind: 'user' }> {
    const user = await db('users').where({ username: name, active: true }).first('id', 'username');
    if (!user) throw problems.unprocessable('unknown-user', `no active user "${name}"`, { errors: [{ field, detail: 'unknown user' }] });
    return { kind: 'user', userId: user.id, username: user.username };
  }

  /**
   * A closure's verdict on the CAPA's suppliers must be one each supplier's qualification can take (or already
   * has); otherwise the CAPA would close on a verdict that is never applied.
   */
  async function checkSupplierVerdict(number: string, decision: SupplierDecision): Promise<void> {
    const suppliers = (await capaSources(db, number)).filter((src) => src.source_type === 'supplier').map((src) => src.source_id);
    for (const supplier of suppliers) {
      const known = await db('erp_suppliers').where({ name: supplier }).whereNull('deleted_at').first('name');
      if (!known)
        throw problems.unprocessable('unknown-supplier', `the ERP sync has no supplier "${supplier}"`, {
          errors: [{ field: 'supplierAction', detail: `unknown supplier ${supplier}` }],
        });
      const status = (await db('supplier_qualifications').where({ supplier }).first('status'))?.status ?? 'pending';
      if (status === DECISION_STATUS[decision]) continue;
      if (status === 'disqualified') throw problems.conflict('run-finished', `${supplier} is disqualified; nothing more can be done`);
      if (!DECISION_FROM[decision].includes(status)) throw problems.conflict('wrong-stage', `${supplier} is ${status}; cannot ${decision}`);
    }
  }

  /** The CAPA as recorded, with the run's live state while it runs. */
  async function view(number: string) {
    const [row, sources, actions, signatures] = await Promise.all([
      findCapa(db, number),
      capaSources(db, number),
      capaActions(db, number),
      listSignaturesFor(db, 'capa', number),
    ]);
    let process: CapaState | null = null;
    if (!row || row.stage !== 'cancelled') {
      try {
        process = await handleFor(number).query(capaStateQuery);
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
    }
    if (!row && !process) throw problems.notFound(`CAPA ${number}`);
    return {
      number,
      workflowId: workflowIds.capa(number),
      title: process?.title ?? row!.title,
      stage: process?.stage ?? row!.stage,
      outcome: process?.outcome ?? row?.outcome ?? null,
      risk: process?.risk ?? (row?.risk_score ? { score: row.risk_score, level: row.risk_level } : null),
      dueAt: process?.dueAt ?? row?.due_at ?? null,
      assignees: process?.pendingAssignees ?? row?.assignees ?? [],
      live: process !== null,
      process,
      sources,
      actions,
      signatures,
    };
  }

  /** An Update on the CAPA's run; the run's validator is the judge of who may do what when. */
  function action<B, A>(
    path: string,
    summary: string,
    roles: readonly Role[] | 'any',
    body: ZodType<B>,
    toArgs: (actor: Actor, body: B, params: { number: string; actionId?: string }) => Promise<A> | A,
    update: UpdateDefinition<CapaState, [A]>,
    params: ZodType<{ number: string; actionId?: string }> = capaParams,
  ): RouteSpec {
    return route({
      method: 'post',
      path: `/capas/:number${path}`,
      summary,
      tag: TAG,
      roles,
      params,
      body,
      handler: async ({ params: p, body: b, actor, ctx }) => {
        const args = await toArgs(actor, b as B, p);
        ctx.body = await handleFor(p.number).executeUpdate(update, { args: [args] });
      },
    });
  }

  return [
    route({
      method: 'post',
      path: '/capas',
      summary: 'Initiate a CAPA with its source records; 409 offers "link to existing" when an open CAPA names a source',
      tag: TAG,
      roles: 'any',
      body: createCapaBody,
      handler: async ({ body, actor, ctx }) => {
        if (!body.allowDuplicate) {
          const existing = await openCapasNaming(db, body.sources);
          if (existing.length) {
            throw problems.conflict(
              'source-already-linked',
              `an open CAPA already names ${existing.map((e) => `${e.source} (${e.number})`).join(', ')}: link to it, or send allowDuplicate`,
              { existing: existing.map((e) => ({ ...e, link: `${located(e.number)}/sources` })) },
            );
          }
        }
        const started = await startCapaRun(temporal, db, config.taskQueue, {
          title: body.title,
          description: body.description,
          sources: body.sources,
          initiatedBy: { userId: actor.userId, username: actor.username },
          durations: body.durations,
          maxExtensions: body.maxExtensions,
          reopenWindow: body.reopenWindow,
        });
        ctx.status = 202;
        ctx.set('Location', located(started.number));
        ctx.body = { ...started, stage: 'initiated', location: located(started.number) };
      },
    }),
    route({
      method: 'get',
      path: '/capas',
      summary: 'List CAPAs (filters: stage, owner, overdue, risk, source) from the Postgres projection',
      tag: TAG,
      roles: 'any',
      query: listCapasQuery,
      handler: async ({ query, ctx }) => {
        const owner = query.owner ? await db('users').where({ username: query.owner }).first('id') : undefined;
        if (query.owner && !owner) {
          ctx.body = { items: [], limit: query.limit, offset: query.offset };
          return;
        }
        const source = query.sourceType && query.sourceId ? { type: query.sourceType, id: query.sourceId } : undefined;
        const items = await listCapas(db, { ...query, ownerUserId: owner?.id, source });
        ctx.body = { items, limit: query.limit, offset: query.offset };
      },
    }),
    route({
      method: 'get',
      path: '/capas/:number',
      summary: 'A CAPA: live state from its run while it runs, sources, actions and signatures',
      tag: TAG,
      roles: 'any',
      params: capaParams,
      handler: async ({ params, ctx }) => {
        ctx.body = await view(params.number);
      },
    }),
    route({
      method: 'get',
      path: '/capas/:number/audit',
      summary: "The CAPA's audit trail",
      tag: TAG,
      roles: ['qa_manager'],
      params: capaParams,
      handler: async ({ params, ctx }) => {
        const events = await auditTrail(db, 'capa', [params.number]);
        if (!events.length) throw problems.notFound(`CAPA ${params.number}`);
        ctx.body = { number: params.number, events };
      },
    }),
    action(
      '/sources',
      'Link more source records to this CAPA ("link to existing")',
      'any',
      linkSourcesBody,
      (actor, b) => ({ sources: b.sources, by: actor.username }),
      linkSourcesUpdate,
    ),
    action(
      '/triage',
      'Triage (QA manager): accept with risk and owner, mark unfounded, or merge into another CAPA',
      ['qa_manager'],
      triageBody,
      async (actor, b, p) => {
        if (b.decision === 'accept') {
          const owner = await activeUser(b.owner, 'body.owner');
          return {
            actor,
            decision: b.decision,
            severity: b.severity,
            occurrence: b.occurrence,
            owner,
            reason: b.reason,
            durations: b.durations,
          };
        }
        if (b.decision === 'merge') {
          const target = await findCapa(db, b.mergeInto);
          if (!target || target.number === p.number || !OPEN_CAPA_STAGES.includes(target.stage)) {
            throw problems.unprocessable('invalid-merge', `${b.mergeInto} is not another open CAPA`, {
              errors: [{ field: 'body.mergeInto', detail: 'not an open CAPA' }],
            });
          }
          return { actor, decision: b.decision, mergeInto: b.mergeInto, reason: b.reason };
        }
        return { actor, decision: b.decision, reason: b.reason };
      },
      triageUpdate,
    ),
    action(
      '/containment',
      'Record containment (owner); moves to investigation',
      'any',
      containmentBody,
      (actor, b) => ({ actor, ...b }),
      containmentUpdate,
    ),
    action(
      '/investigation',
      'Record the root cause, its method and findings (owner)',
      'any',
      investigationBody,
      (actor, b) => ({ actor, ...b }),
      investigationUpdate,
    ),
    action(
      '/plan',
      'Submit the action plan with effectiveness criteria (owner); moves to plan approval',
      'any',
      planBody,
      async (actor, b) => ({
        actor,
        criteria: b.criteria,
        actions: await Promise.all(
          b.actions.map(async (a, i) => ({
            type: a.type,
            description: a.description,
            dueAt: a.dueAt,
            owner:
              'user' in a.owner
                ? await activeUser(a.owner.user, `body.actions.${i}.owner`)
                : ({ kind: 'role', role: 'qa_manager' } as const),
          })),
        ),
      }),
      submitPlanUpdate,
    ),
    action(
      '/plan/decision',
      'Approve the plan (QA, electronic signature over the plan hash) or reject it with a comment',
      ['qa_manager'],
      planDecisionBody,
      async (actor, b, p) => ({
        actor,
        decision: b.decision,
        comment: b.comment || undefined,
        signature: b.signature ? await verifySigner(deps, actor, b.signature, { entityType: 'capa', entityId: p.number }) : undefined,
      }),
      decidePlanUpdate,
    ),
    action(
      '/actions/:actionId/complete',
      'Complete an action with evidence (its owner)',
      'any',
      completeActionBody,
      (actor, b, p) => ({ actor, actionId: p.actionId!, evidence: { text: b.evidence, attachments: b.attachments } }),
      completeActionUpdate,
      actionParams,
    ),
    action(
      '/actions/:actionId/extension',
      "Ask for a later due date (the action's owner)",
      'any',
      extensionBody,
      (actor, b, p) => ({ actor, actionId: p.actionId!, dueAt: b.dueAt, reason: b.reason }),
      requestExtensionUpdate,
      actionParams,
    ),
    action(
      '/actions/:actionId/extension/decision',
      'Grant or refuse a requested extension (QA, reason required, limited in number)',
      ['qa_manager'],
      extensionDecisionBody,
      (actor, b, p) => ({ actor, actionId: p.actionId!, approve: b.approve, reason: b.reason }),
      decideExtensionUpdate,
      actionParams,
    ),
    action(
      '/effectiveness',
      'Record effectiveness results against the criteria (a verifier who implemented no action); a failure returns to investigation',
      ['qa_manager', 'lab_director'],
      effectivenessBody,
      (actor, b) => ({ actor, ...b }),
      effectivenessUpdate,
    ),
    action(
      '/close',
      'Close (QA, electronic signature over the closure hash); refused while actions are open or effectiveness is missing',
      ['qa_manager'],
      closeBody,
      async (actor, b, p) => {
        if (b.supplierAction) await checkSupplierVerdict(p.number, b.supplierAction);
        return {
          actor,
          comment: b.comment,
          supplierAction: b.supplierAction,
          signature: await verifySigner(deps, actor, b.signature, { entityType: 'capa', entityId: p.number }),
        };
      },
      closeCapaUpdate,
    ),
    action(
      '/cancel',
      'Cancel an open CAPA (QA, reason required)',
      ['qa_manager'],
      reasonBody,
      (actor, b) => ({ actor, reason: b.reason }),
      cancelCapaUpdate,
    ),
    action(
      '/reopen',
      'Reopen a closed CAPA (QA, reason required); the closure date is cleared',
      ['qa_manager'],
      reasonBody,
      (actor, b) => ({ actor, reason: b.reason }),
      reopenCapaUpdate,
    ),
    route({
      method: 'post',
      path: '/capas/deactivated-users',
      summary: "After deactivating a user: hand what they hold in open CAPAs to each CAPA's QA manager",
      tag: TAG,
      roles: ['admin'],
      body: deactivatedBody,
      handler: async ({ body, ctx }) => {
        const user = await db('users').where({ username: body.username }).first('id', 'username', 'active');
        if (!user) throw problems.notFound(`user ${body.username}`);
        if (user.active) throw problems.conflict('user-active', `${body.username} is still active; deactivate the user first`);
        const notified = await notifyCapasOfDeactivation(temporal, db, { userId: user.id, username: user.username });
        ctx.status = 202;
        ctx.body = { username: user.username, notified };
      },
    }),
  ];
}
