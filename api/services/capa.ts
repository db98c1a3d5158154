import type { z } from 'zod';
import type { AssigneeRef } from '../../common/assignees';
import {
  DEFAULT_MAX_EXTENSIONS,
  DEFAULT_REOPEN_WINDOW,
  OPEN_CAPA_STAGES,
  RISK_DURATIONS,
  riskOf,
  type CapaDurations,
  capaStateQuery,
  type CapaStage,
  type CapaState,
  type RiskLevel,
  type CloseArgs,
  type PlanArgs,
  type PlanDecisionArgs,
  type Proven,
  type TriageArgs,
} from '../../common/capa';
import { capaGrantedArgs, type CapaGrantAction } from '../../common/capa-grants';
import { durationMs } from '../../common/durations';
import { workflowIds } from '../../common/ids';
import type { Actor } from '../../common/roles';
import { DECISION_FROM, DECISION_STATUS, type SupplierDecision } from '../../common/supplier-qualification';
import { capaActions, capaSources, findCapa, findUser, listCapas, openCapasNaming, supplierStanding, userIdOf } from '../../db/capa';
import { findActiveUser } from '../../db/identity';
import type { Db } from '../../db/knex';
import { listSignaturesFor } from '../../db/signatures';
import type { ApiDeps } from '../deps';
import { liveOrRecorded } from '../live-or-recorded';
import { problems } from '../problem';
import type { closeBody, createCapaBody, listCapasQuery, planBody, planDecisionBody, triageBody } from '../schemas/capa';
import type { SignatureInput } from '../../common/signatures';
import { grantAction, verifySigner } from '../signing';
import { capaRun, startCapaRun } from '../temporal/capa';
import { handOverOpenWork } from './hand-over';
import { checkCountCeiling, checkTimers, requireTimerRole } from './timer-bounds';

export const capaLocation = (number: string) => `/api/v1/capas/${number}`;

/** A request as the API builds it, before the grant that proves it is written. */
export type Unproven<A extends Proven> = Omit<A, 'grant'>;

/**
 * Writes the single-use grant for one action the caller may take on a CAPA's run (after re-verifying the password
 * where it is signed) and answers the Update's argument carrying its ID. The grant binds what common/capa-grants
 * says the action binds, built from the very arguments the run is sent.
 */
export async function withCapaGrant<A extends Proven>(
  deps: ApiDeps,
  number: string,
  action: CapaGrantAction,
  request: Unproven<A>,
  signature?: SignatureInput,
): Promise<A> {
  const { actor, ...rest } = request;
  const grant = await grantAction(deps, actor, {
    workflowId: workflowIds.capa(number),
    action,
    args: (capaGrantedArgs[action] as (a: unknown) => unknown)(rest),
    signature,
  });
  return { ...request, grant } as A;
}

/** Sources are linked to a CAPA by its owner or a QA manager only (403 before any grant is written). */
export async function requireSourceLinker(db: Db, actor: Actor, number: string): Promise<void> {
  const row = await findCapa(db, number);
  if (!row) throw problems.notFound(`CAPA ${number}`);
  if (actor.roles.includes('qa_manager')) return;
  const owner = row.owner ?? '';
  const owns = row.owner_user_id === actor.userId || (owner.startsWith('role:') && (actor.roles as string[]).includes(owner.slice(5)));
  if (!owns) throw problems.forbidden(`only the owner of ${number} or a QA manager may link sources to it`);
}

/**
 * Starts a CAPA unless an open one already names one of its sources (409 with "link to existing"), or the caller
 * asked for a duplicate.
 */
export async function initiateCapa(deps: ApiDeps, actor: Actor, body: z.infer<typeof createCapaBody>) {
  checkCapaTimersAtCreation(actor, body);
  if (!body.allowDuplicate) {
    const existing = await openCapasNaming(deps.db, body.sources);
    if (existing.length) {
      throw problems.conflict(
        'source-already-linked',
        `an open CAPA already names ${existing.map((e) => `${e.source} (${e.number})`).join(', ')}: link to it, or send allowDuplicate`,
        { existing: existing.map((e) => ({ ...e, link: `${capaLocation(e.number)}/sources` })) },
      );
    }
  }
  return startCapaRun(deps.temporal, deps.db, deps.config.taskQueue, {
    title: body.title,
    description: body.description,
    sources: body.sources,
    initiatedBy: { userId: actor.userId, username: actor.username },
    durations: body.durations,
    maxExtensions: body.maxExtensions,
    reopenWindow: body.reopenWindow,
  });
}

/** QA owns a CAPA's clock: only a QA manager may shorten its deadlines, extensions or reopening window. */
const CAPA_TIMER_ROLES = ['qa_manager'] as const;
const DURATION_KEYS = ['containment', 'investigation', 'effectivenessWait', 'reminderBefore'] as const;

/** Before triage the risk level is unknown, so a duration set at creation may not exceed any level's. */
const STRICTEST_DURATIONS = Object.fromEntries(
  DURATION_KEYS.map((key) => {
    const values = Object.values(RISK_DURATIONS).map((d) => d[key]);
    return [key, values.reduce((a, b) => (durationMs(a) <= durationMs(b) ? a : b))];
  }),
) as unknown as CapaDurations;

function checkCapaTimersAtCreation(actor: Actor, body: z.infer<typeof createCapaBody>) {
  const rule = { roles: CAPA_TIMER_ROLES, what: 'CAPA timers' };
  checkTimers(actor, body.durations, { ...rule, ceilings: { ...STRICTEST_DURATIONS }, prefix: 'body.durations.' });
  checkTimers(actor, { reopenWindow: body.reopenWindow }, { ...rule, ceilings: { reopenWindow: DEFAULT_REOPEN_WINDOW }, prefix: 'body.' });
  const changesExtensions = body.maxExtensions !== undefined && body.maxExtensions !== DEFAULT_MAX_EXTENSIONS;
  requireTimerRole(actor, changesExtensions ? ['body.maxExtensions'] : [], rule);
  checkCountCeiling(body.maxExtensions, DEFAULT_MAX_EXTENSIONS, 'body.maxExtensions');
}

/** The projection's CAPAs by the query's filters; an owner who is no user owns none. */
export async function findCapas(db: Db, query: z.infer<typeof listCapasQuery>) {
  const ownerUserId = query.owner ? await userIdOf(db, query.owner) : undefined;
  if (query.owner && !ownerUserId) return [];
  const source = query.sourceType && query.sourceId ? { type: query.sourceType, id: query.sourceId } : undefined;
  return listCapas(db, { ...query, ownerUserId, source });
}

/** What a CAPA's answer leads with, from one source: the live run or the projection. */
interface CapaHeadline {
  title: string;
  stage: CapaStage;
  outcome: string | null;
  risk: { score: number; level: RiskLevel | null } | null;
  dueAt: string | Date | null;
  assignees: string[];
}

/** The CAPA's headline from the run's live state while it answers, else from the projection; plus its records. */
export async function capaView(deps: ApiDeps, number: string) {
  const { db, temporal } = deps;
  const [row, sources, actions, signatures] = await Promise.all([
    findCapa(db, number),
    capaSources(db, number),
    capaActions(db, number),
    listSignaturesFor(db, 'capa', number),
  ]);
  const found = await liveOrRecorded<CapaState, CapaHeadline>({
    // A cancelled CAPA's run has ended; the projection is the whole story.
    run: row?.stage === 'cancelled' ? null : capaRun(temporal, number),
    query: capaStateQuery,
    fromLive: (s) => ({
      title: s.title,
      stage: s.stage,
      outcome: s.outcome,
      risk: s.risk,
      dueAt: s.dueAt,
      assignees: s.pendingAssignees,
    }),
    recorded: row
      ? {
          title: row.title,
          stage: row.stage,
          outcome: row.outcome,
          risk: row.risk_score ? { score: row.risk_score, level: row.risk_level } : null,
          dueAt: row.due_at,
          assignees: row.assignees ?? [],
        }
      : null,
  });
  if (!found) throw problems.notFound(`CAPA ${number}`);
  return {
    number,
    workflowId: workflowIds.capa(number),
    ...found.view,
    live: found.live !== null,
    process: found.live,
    sources,
    actions,
    signatures,
  };
}

async function activeUser(db: Db, username: string, field: string): Promise<AssigneeRef & { kind: 'user' }> {
  const user = await findActiveUser(db, username);
  if (!user) throw problems.unprocessable('unknown-user', `no active user "${username}"`, { errors: [{ field, detail: 'unknown user' }] });
  return { kind: 'user', userId: user.id, username: user.username };
}

/** Triage's arguments: the owner must be an active user, a merge target another open CAPA. */
export async function triageArgs(db: Db, actor: Actor, number: string, body: z.infer<typeof triageBody>): Promise<Unproven<TriageArgs>> {
  if (body.decision === 'accept') {
    const owner = await activeUser(db, body.owner, 'body.owner');
    const { severity, occurrence, reason, durations } = body;
    const level = riskOf(severity, occurrence).level;
    checkTimers(actor, durations, {
      roles: CAPA_TIMER_ROLES,
      what: 'CAPA timers',
      ceilings: { ...RISK_DURATIONS[level] },
      prefix: 'body.durations.',
    });
    return { actor, decision: 'accept', severity, occurrence, owner, reason, durations };
  }
  if (body.decision === 'merge') {
    const target = await findCapa(db, body.mergeInto);
    if (!target || target.number === number || !OPEN_CAPA_STAGES.includes(target.stage)) {
      throw problems.unprocessable('invalid-merge', `${body.mergeInto} is not another open CAPA`, {
        errors: [{ field: 'body.mergeInto', detail: 'not an open CAPA' }],
      });
    }
    return { actor, decision: 'merge', mergeInto: body.mergeInto, reason: body.reason };
  }
  return { actor, decision: body.decision, reason: body.reason };
}

/** A plan's arguments: each action's owner is an active user, or QA managers as a role. */
export async function planArgs(db: Db, actor: Actor, body: z.infer<typeof planBody>): Promise<Unproven<PlanArgs>> {
  return {
    actor,
    criteria: body.criteria,
    actions: await Promise.all(
      body.actions.map(async (action, i) => ({
        type: action.type,
        description: action.description,
        dueAt: action.dueAt,
        owner:
          'user' in action.owner
            ? await activeUser(db, action.owner.user, `body.actions.${i}.owner`)
            : ({ kind: 'role', role: 'qa_manager' } as const),
      })),
    ),
  };
}

/** A plan decision's arguments: an approval's signer re-authenticated first. */
export async function planDecisionArgs(
  deps: ApiDeps,
  actor: Actor,
  number: string,
  body: z.infer<typeof planDecisionBody>,
): Promise<PlanDecisionArgs> {
  const signature = body.signature ? await verifySigner(deps, actor, body.signature, { entityType: 'capa', entityId: number }) : undefined;
  const request = { actor, decision: body.decision, comment: body.comment || undefined, signature };
  return withCapaGrant<PlanDecisionArgs>(deps, number, 'capa.decide_plan', request, signature);
}

/**
 * A closure's verdict on the CAPA's suppliers must be one each supplier's qualification can take (or already
 * has); otherwise the CAPA would close on a verdict that is never applied.
 */
async function checkSupplierVerdict(db: Db, number: string, decision: SupplierDecision, suppliers: string[]): Promise<void> {
  const named = (await capaSources(db, number)).filter((src) => src.source_type === 'supplier').map((src) => src.source_id);
  const foreign = suppliers.filter((supplier) => !named.includes(supplier));
  if (foreign.length)
    throw problems.unprocessable('not-a-capa-supplier', `${number} does not name ${foreign.join(', ')} as a supplier source`, {
      errors: [{ field: 'body.suppliers', detail: `not a supplier source of ${number}` }],
    });
  for (const supplier of suppliers) {
    const { known, status } = await supplierStanding(db, supplier);
    if (!known)
      throw problems.unprocessable('unknown-supplier', `the ERP sync has no supplier "${supplier}"`, {
        errors: [{ field: 'supplierAction', detail: `unknown supplier ${supplier}` }],
      });
    if (status === DECISION_STATUS[decision]) continue;
    if (status === 'disqualified') throw problems.conflict('run-finished', `${supplier} is disqualified; nothing more can be done`);
    if (!DECISION_FROM[decision].includes(status)) throw problems.conflict('wrong-stage', `${supplier} is ${status}; cannot ${decision}`);
  }
}

/**
 * A closure's arguments: the supplier verdict checked for exactly the suppliers it names, the signer
 * re-authenticated, and the grant binding the signature, the verdict and its suppliers.
 */
export async function closeArgs(deps: ApiDeps, actor: Actor, number: string, body: z.infer<typeof closeBody>): Promise<CloseArgs> {
  const suppliers = body.supplierAction ? [...new Set(body.suppliers ?? [])] : undefined;
  if (body.supplierAction) await checkSupplierVerdict(deps.db, number, body.supplierAction, suppliers ?? []);
  const signature = await verifySigner(deps, actor, body.signature, { entityType: 'capa', entityId: number });
  const request = { actor, comment: body.comment, supplierAction: body.supplierAction, suppliers, signature };
  return withCapaGrant<CloseArgs>(deps, number, 'capa.close', request, signature);
}

/**
 * The compatibility alias of `POST /users/{username}/deactivate`'s hand-over, for a user deactivated before it
 * existed: tells every process (not only CAPA) to hand over what the user holds; refused while the user is active.
 */
export async function handOverFromDeactivated(deps: ApiDeps, username: string) {
  const user = await findUser(deps.db, username);
  if (!user) throw problems.notFound(`user ${username}`);
  if (user.active) throw problems.conflict('user-active', `${username} is still active; deactivate the user first`);
  const handedOver = await handOverOpenWork(deps, { userId: user.id, username: user.username });
  const notified = [...handedOver.capa, ...handedOver.document, ...handedOver.sample, ...handedOver.summary];
  return { username: user.username, notified, handedOver };
}
