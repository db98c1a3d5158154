import { CAPA_CLOSURE, CAPA_VERIFICATION } from '../../db/gate';
import { requireGate } from '../services/training';
import {
  cancelCapaUpdate,
  closeCapaUpdate,
  completeActionUpdate,
  containmentUpdate,
  decideExtensionUpdate,
  decidePlanUpdate,
  effectivenessUpdate,
  investigationUpdate,
  linkSourcesUpdate,
  reopenCapaUpdate,
  requestExtensionUpdate,
  submitPlanUpdate,
  triageUpdate,
  type CompleteActionArgs,
  type ContainmentArgs,
  type EffectivenessArgs,
  type ExtensionDecisionArgs,
  type ExtensionRequestArgs,
  type InvestigationArgs,
  type LinkSourcesArgs,
  type PlanArgs,
  type Proven,
  type ReasonArgs,
  type TriageArgs,
} from '../../common/capa';
import { auditTrail } from '../../db/audit';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, updateRoute, type RouteSpec } from '../route';
import * as R from '../schemas/responses';
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
import {
  capaLocation,
  capaView,
  closeArgs,
  findCapas,
  handOverFromDeactivated,
  initiateCapa,
  planArgs,
  planDecisionArgs,
  requireSourceLinker,
  triageArgs,
  withCapaGrant,
} from '../services/capa';
import { capaRun } from '../temporal/capa';

const tag = 'capa';

export function capaRoutes(deps: ApiDeps): RouteSpec[] {
  const { db, temporal } = deps;
  // Every human action is an Update on the CAPA's run; the run's validator judges who may do what when.
  const run = (params: { number: string }) => capaRun(temporal, params.number);
  const onCapa = { tag, params: capaParams, run } as const;
  const onAction = { tag, params: actionParams, run } as const;

  return [
    route({
      method: 'post',
      path: '/capas',
      response: { 202: R.capaStarted }, problems: [409, 422],
      summary: 'Initiate a CAPA with its source records; 409 offers "link to existing" when an open CAPA names a source',
      tag,
      roles: 'any',
      body: createCapaBody,
      handler: async ({ body, actor, ctx }) => {
        const started = await initiateCapa(deps, actor, body);
        ctx.status = 202;
        ctx.set('Location', capaLocation(started.number));
        ctx.body = { ...started, stage: 'initiated', location: capaLocation(started.number) };
      },
    }),
    route({
      method: 'get',
      path: '/capas',
      response: R.page(R.capaRow),
      summary: 'List CAPAs (filters: stage, owner, overdue, risk, source) from the Postgres projection',
      tag,
      roles: 'any',
      query: listCapasQuery,
      handler: async ({ query, ctx }) => {
        ctx.body = { items: await findCapas(db, query), limit: query.limit, offset: query.offset };
      },
    }),
    route({
      method: 'get',
      path: '/capas/:number',
      response: R.capaView,
      summary: 'A CAPA: live state from its run while it runs, sources, actions and signatures',
      tag,
      roles: 'any',
      params: capaParams,
      handler: async ({ params, ctx }) => {
        ctx.body = await capaView(deps, params.number);
      },
    }),
    route({
      method: 'get',
      path: '/capas/:number/audit',
      response: R.capaAudit,
      summary: "The CAPA's audit trail",
      tag,
      roles: ['qa_manager'],
      params: capaParams,
      handler: async ({ params, ctx }) => {
        const events = await auditTrail(db, 'capa', [params.number]);
        if (!events.length) throw problems.notFound(`CAPA ${params.number}`);
        ctx.body = { number: params.number, events };
      },
    }),
    updateRoute({
      ...onCapa,
      method: 'post',
      path: '/capas/:number/sources',
      response: R.capaState,
      summary: 'Link more source records to this CAPA ("link to existing"; its owner or QA)',
      roles: 'any',
      body: linkSourcesBody,
      update: linkSourcesUpdate,
      toArgs: async ({ actor, body, params }) => {
        await requireSourceLinker(db, actor, params.number);
        return withCapaGrant<LinkSourcesArgs & Proven>(deps, params.number, 'capa.link_sources', {
          actor,
          sources: body.sources,
          by: actor.username,
        });
      },
    }),
    updateRoute({
      ...onCapa,
      method: 'post',
      path: '/capas/:number/triage',
      response: R.capaState,
      summary: 'Triage (QA manager): accept with risk and owner, mark unfounded, or merge into another CAPA',
      roles: ['qa_manager'],
      body: triageBody,
      update: triageUpdate,
      toArgs: async ({ actor, body, params }) =>
        withCapaGrant<TriageArgs>(deps, params.number, 'capa.triage', await triageArgs(db, actor, params.number, body)),
    }),
    updateRoute({
      ...onCapa,
      method: 'post',
      path: '/capas/:number/containment',
      response: R.capaState,
      summary: 'Record containment (owner); moves to investigation',
      roles: 'any',
      body: containmentBody,
      update: containmentUpdate,
      toArgs: ({ actor, body, params }) =>
        withCapaGrant<ContainmentArgs>(deps, params.number, 'capa.record_containment', { actor, ...body }),
    }),
    updateRoute({
      ...onCapa,
      method: 'post',
      path: '/capas/:number/investigation',
      response: R.capaState,
      summary: 'Record the root cause, its method and findings (owner)',
      roles: 'any',
      body: investigationBody,
      update: investigationUpdate,
      toArgs: ({ actor, body, params }) =>
        withCapaGrant<InvestigationArgs>(deps, params.number, 'capa.record_investigation', { actor, ...body }),
    }),
    updateRoute({
      ...onCapa,
      method: 'post',
      path: '/capas/:number/plan',
      response: R.capaState,
      summary: 'Submit the action plan with effectiveness criteria (owner); moves to plan approval',
      roles: 'any',
      body: planBody,
      update: submitPlanUpdate,
      toArgs: async ({ actor, body, params }) =>
        withCapaGrant<PlanArgs>(deps, params.number, 'capa.submit_plan', await planArgs(db, actor, body)),
    }),
    updateRoute({
      ...onCapa,
      method: 'post',
      path: '/capas/:number/plan/decision',
      response: R.capaState,
      problems: [423],
      summary: 'Approve the plan (QA, electronic signature over the plan hash) or reject it with a comment',
      roles: ['qa_manager'],
      body: planDecisionBody,
      update: decidePlanUpdate,
      toArgs: ({ actor, body, params }) => planDecisionArgs(deps, actor, params.number, body),
    }),
    updateRoute({
      ...onAction,
      method: 'post',
      path: '/capas/:number/actions/:actionId/complete',
      response: R.capaState,
      summary: 'Complete an action with evidence (its owner)',
      roles: 'any',
      body: completeActionBody,
      update: completeActionUpdate,
      toArgs: ({ actor, body, params }) =>
        withCapaGrant<CompleteActionArgs>(deps, params.number, 'capa.complete_action', {
          actor,
          actionId: params.actionId,
          evidence: { text: body.evidence, attachments: body.attachments },
        }),
    }),
    updateRoute({
      ...onAction,
      method: 'post',
      path: '/capas/:number/actions/:actionId/extension',
      response: R.capaState,
      summary: "Ask for a later due date (the action's owner)",
      roles: 'any',
      body: extensionBody,
      update: requestExtensionUpdate,
      toArgs: ({ actor, body, params }) =>
        withCapaGrant<ExtensionRequestArgs>(deps, params.number, 'capa.request_extension', {
          actor,
          actionId: params.actionId,
          dueAt: body.dueAt,
          reason: body.reason,
        }),
    }),
    updateRoute({
      ...onAction,
      method: 'post',
      path: '/capas/:number/actions/:actionId/extension/decision',
      response: R.capaState,
      summary: 'Grant or refuse a requested extension (QA, reason required, limited in number)',
      roles: ['qa_manager'],
      body: extensionDecisionBody,
      update: decideExtensionUpdate,
      toArgs: ({ actor, body, params }) =>
        withCapaGrant<ExtensionDecisionArgs>(deps, params.number, 'capa.decide_extension', {
          actor,
          actionId: params.actionId,
          approve: body.approve,
          reason: body.reason,
        }),
    }),
    updateRoute({
      ...onCapa,
      method: 'post',
      path: '/capas/:number/effectiveness',
      response: R.capaState,
      summary:
        'Record effectiveness results against the criteria (a verifier who implemented no action); a failure returns to investigation',
      roles: ['qa_manager', 'lab_director'],
      body: effectivenessBody,
      update: effectivenessUpdate,
      toArgs: async ({ actor, body, params }) => {
        await requireGate(deps, actor, { activity: CAPA_VERIFICATION, roles: ['qa_manager', 'lab_director'] }, { entityType: 'capa', entityId: params.number });
        return withCapaGrant<EffectivenessArgs>(deps, params.number, 'capa.record_effectiveness', { actor, ...body });
      },
    }),
    updateRoute({
      ...onCapa,
      method: 'post',
      path: '/capas/:number/close',
      response: R.capaState,
      problems: [423],
      summary: 'Close (QA, electronic signature over the closure hash); refused while actions are open or effectiveness is missing',
      roles: ['qa_manager'],
      body: closeBody,
      update: closeCapaUpdate,
      toArgs: async ({ actor, body, params }) => {
        await requireGate(deps, actor, { activity: CAPA_CLOSURE, roles: ['qa_manager'] }, { entityType: 'capa', entityId: params.number });
        return closeArgs(deps, actor, params.number, body);
      },
    }),
    updateRoute({
      ...onCapa,
      method: 'post',
      path: '/capas/:number/cancel',
      response: R.capaState,
      summary: 'Cancel an open CAPA (QA, reason required)',
      roles: ['qa_manager'],
      body: reasonBody,
      update: cancelCapaUpdate,
      toArgs: ({ actor, body, params }) => withCapaGrant<ReasonArgs>(deps, params.number, 'capa.cancel', { actor, reason: body.reason }),
    }),
    updateRoute({
      ...onCapa,
      method: 'post',
      path: '/capas/:number/reopen',
      response: R.capaState,
      summary: 'Reopen a closed CAPA (QA, reason required); the closure date is cleared',
      roles: ['qa_manager'],
      body: reasonBody,
      update: reopenCapaUpdate,
      toArgs: ({ actor, body, params }) => withCapaGrant<ReasonArgs>(deps, params.number, 'capa.reopen', { actor, reason: body.reason }),
    }),
    route({
      method: 'post',
      path: '/capas/deactivated-users',
      response: { 202: R.handedOver },
      summary: "Compatibility alias: hand what a deactivated user holds in every process over again (POST /users/{username}/deactivate does it itself)",
      tag,
      roles: ['admin'],
      body: deactivatedBody,
      handler: async ({ body, ctx }) => {
        const handedOver = await handOverFromDeactivated(deps, body.username);
        ctx.status = 202;
        ctx.body = handedOver;
      },
    }),
  ];
}
