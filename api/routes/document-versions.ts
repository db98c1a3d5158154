import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/common';
import type { UpdateDefinition, WorkflowHandle } from '@temporalio/client';
import type { ZodType } from 'zod';
import {
  completePeriodicReviewUpdate,
  decideUpdate,
  documentStateQuery,
  extendDueUpdate,
  FINAL_VERSION_STATES,
  obsoleteUpdate,
  reassignUpdate,
  uploadRevisionUpdate,
  withdrawUpdate,
} from '../../common/document-approval';
import { type AssigneeRef } from '../../common/assignees';
import { workflowIds } from '../../common/ids';
import type { Actor, Role } from '../../common/roles';
import { routingProblems } from '../../common/routing-rules';
import { findVersion, listSignatures, storeContent, type VersionRow } from '../../db/documents';
import type { Db } from '../../db/knex';
import type { documentApprovalWorkflow } from '../../workflows';
import { approvalInput, startApprovalRun } from '../document-approval-runs';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import { verifySigner } from '../signing';
import {
  commentBody,
  contentBody,
  decisionBody,
  extendBody,
  reasonBody,
  reassignBody,
  submitBody,
  versionParams,
} from '../schemas/documents';

export async function loadVersion(db: Db, number: string, version: number): Promise<VersionRow> {
  const row = await findVersion(db, number, version);
  if (!row) throw problems.notFound(`version ${version} of document ${number}`);
  return row;
}

/**
 * The run to ask for live state, if any. A draft whose submission was just accepted has a run before its record
 * names it (the run's first activity writes the link), so a draft is looked up by its deterministic workflow ID.
 */
const liveRunId = (row: VersionRow): string | null =>
  FINAL_VERSION_STATES.includes(row.state) ? null : (row.workflow_id ?? workflowIds.documentApproval(row.number, row.version));

/** The record, plus the run's live state while it runs (stage, slots, decisions, due dates). */
export async function versionView(deps: ApiDeps, row: VersionRow) {
  // The signatures are read while the run is queried: two independent round trips at once.
  const signatures = listSignatures(deps.db, row.id);
  signatures.catch(() => undefined); // awaited below; this only keeps a query failure from going unhandled meanwhile
  let process = null;
  const runId = liveRunId(row);
  if (runId) {
    try {
      process = await deps.temporal.workflow.getHandle(runId).query(documentStateQuery);
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  }
  return {
    number: row.number,
    title: row.title,
    version: row.version,
    author: row.author,
    state: process?.state ?? row.state,
    contentHash: process?.contentHash ?? row.content_hash,
    round: process?.round ?? row.round,
    workflowId: row.workflow_id ?? (process ? process.workflowId : null),
    stage: row.stage_name,
    assignees: process?.pendingAssignees ?? row.assignees,
    dueAt: process?.dueAt ?? row.due_at,
    submittedAt: row.submitted_at,
    approvedAt: row.approved_at,
    effectiveAt: row.effective_at,
    closedAt: row.closed_at,
    nextReviewAt: process?.nextPeriodicReviewAt ?? row.next_review_at,
    live: process !== null,
    process,
    signatures: await signatures,
  };
}

/** Every stage's assignees, the named users looked up in one query; unknown or inactive users are a 422. */
async function resolveRouting(db: Db, routing: { assignees: ({ user: string } | { role: Role })[] }[]): Promise<AssigneeRef[][]> {
  const usernames = [...new Set(routing.flatMap((stage) => stage.assignees.flatMap((a) => ('user' in a ? [a.user] : []))))];
  const users: { id: string; username: string }[] = usernames.length
    ? await db('users').whereIn('username', usernames).where({ active: true }).select('id', 'username')
    : [];
  const byName = new Map(users.map((user) => [user.username, user]));
  return routing.map((stage, i) =>
    stage.assignees.map((a, j): AssigneeRef => {
      if ('role' in a) return { kind: 'role', role: a.role };
      const user = byName.get(a.user);
      if (!user) {
        const field = `body.routing.${i}.assignees.${j}`;
        throw problems.unprocessable('unknown-user', `no active user "${a.user}"`, { errors: [{ field, detail: 'unknown user' }] });
      }
      return { kind: 'user', userId: user.id, username: user.username };
    }),
  );
}

async function resolveAssignee(db: Db, input: { user: string } | { role: Role }, field: string): Promise<AssigneeRef> {
  if ('role' in input) return { kind: 'role', role: input.role };
  const user = await db('users').where({ username: input.user, active: true }).first('id', 'username');
  if (!user)
    throw problems.unprocessable('unknown-user', `no active user "${input.user}"`, { errors: [{ field, detail: 'unknown user' }] });
  return { kind: 'user', userId: user.id, username: user.username };
}

export function documentVersionRoutes(deps: ApiDeps): RouteSpec[] {
  const { db, temporal, config } = deps;

  async function runningVersion(
    number: string,
    version: number,
  ): Promise<{ row: VersionRow; handle: WorkflowHandle<typeof documentApprovalWorkflow> }> {
    const row = await loadVersion(db, number, version);
    if (!row.workflow_id || row.state === 'draft')
      throw problems.conflict('not-submitted', `${number} v${version} has not been submitted for review`);
    if (FINAL_VERSION_STATES.includes(row.state))
      throw problems.conflict('run-finished', `${number} v${version} is ${row.state}; nothing more can be done`);
    return { row, handle: temporal.workflow.getHandle(row.workflow_id) };
  }

  const versionPath = '/documents/:number/versions/:version';
  const located = (row: VersionRow) => `/api/v1/documents/${row.number}/versions/${row.version}`;

  return [
    route({
      method: 'post',
      path: `${versionPath}/submit`,
      summary: 'Submit a draft version for review with its routing; answers 202 with the run to poll',
      tag: 'document approval',
      roles: ['author', 'document_control'],
      params: versionParams,
      body: submitBody,
      handler: async ({ params, body, actor, ctx }) => {
        // The routing's users are looked up while the version is read (one round trip fewer on the way to the
        // start); the version's own problems (404, 409, 403) still answer before an unknown user's 422.
        const resolving = resolveRouting(db, body.routing);
        resolving.catch(() => undefined); // awaited below, unless the version's problem answers first
        const row = await loadVersion(db, params.number, params.version);
        const workflowId = workflowIds.documentApproval(row.number, row.version);
        const alreadySubmitted = () =>
          problems.conflict(
            'already-submitted',
            `${row.number} v${row.version} has already been submitted (run ${row.workflow_id ?? workflowId})`,
            {
              workflowId: row.workflow_id ?? workflowId,
            },
          );
        if (row.state !== 'draft' || row.workflow_id) throw alreadySubmitted();
        if (row.author_id !== actor.userId && !actor.roles.includes('document_control')) {
          throw problems.forbidden('only the author or document control may submit this version');
        }
        const assignees = await resolving;
        const routing = body.routing.map((stage, i) => ({
          name: stage.name,
          rule: stage.rule,
          due: stage.due ?? config.documentDefaults.stageDue,
          assignees: assignees[i],
        }));
        const errors = routingProblems(routing, row.author_id);
        if (errors.length) {
          const named = errors.map((e) => ({ ...e, field: `body.${e.field.replace(/\[(\d+)\]/g, '.$1')}` }));
          throw problems.unprocessable('invalid-routing', errors.map((e) => e.detail).join('; '), { errors: named });
        }
        const input = approvalInput(row, routing, {
          reminderBefore: body.reminderBefore ?? config.documentDefaults.reminderBefore,
          effectiveDate: body.effectiveDate,
          periodicReview: body.periodicReview ?? config.documentDefaults.periodicReview,
          submittedBy: actor.userId,
        });
        // A concurrent submission of the same version may win the race past the check above: same answer.
        const handle = await startApprovalRun(temporal, config.taskQueue, input).catch((err) => {
          throw err instanceof WorkflowExecutionAlreadyStartedError ? alreadySubmitted() : err;
        });
        ctx.status = 202;
        ctx.set('Location', located(row));
        ctx.body = { workflowId: handle.workflowId, runId: handle.firstExecutionRunId, state: 'in_review', location: located(row) };
      },
    }),
    route({
      method: 'post',
      path: `${versionPath}/decisions`,
      summary: 'Approve (an electronic signature: password, meaning, content hash), reject or request changes',
      tag: 'document approval',
      roles: 'any',
      params: versionParams,
      body: decisionBody,
      handler: async ({ params, body, actor, ctx }) => {
        const { row, handle } = await runningVersion(params.number, params.version);
        const signature = body.signature
          ? await verifySigner(deps, actor, body.signature, { entityType: 'document', entityId: row.number })
          : undefined;
        ctx.body = await handle.executeUpdate(decideUpdate, {
          args: [{ actor, decision: body.decision, comment: body.comment || undefined, signature }],
        });
      },
    }),
    actionRoute(
      'withdraw',
      'Withdraw a version from review (author or document control, reason required)',
      reasonBody,
      (actor, body) => [withdrawUpdate, { actor, reason: body.reason }] as const,
    ),
    actionRoute(
      'obsolete',
      'Retire an effective version (document control, reason required)',
      reasonBody,
      (actor, body) => [obsoleteUpdate, { actor, reason: body.reason }] as const,
    ),
    actionRoute(
      'periodic-review',
      'Record the periodic review of an effective version (document control)',
      commentBody,
      (actor, body) => [completePeriodicReviewUpdate, { actor, comment: body.comment }] as const,
    ),
    actionRoute(
      'extend',
      "Move the current stage's due date later (document control, reason required)",
      extendBody,
      (actor, body) => [extendDueUpdate, { actor, dueAt: body.dueAt, reason: body.reason }] as const,
    ),
    route({
      method: 'post',
      path: `${versionPath}/reassign`,
      summary: 'Hand an undecided review slot of the current stage to someone else (document control, reason required)',
      tag: 'document approval',
      roles: ['document_control'],
      params: versionParams,
      body: reassignBody,
      handler: async ({ params, body, actor, ctx }) => {
        const { handle } = await runningVersion(params.number, params.version);
        const to = await resolveAssignee(db, body.to, 'body.to');
        ctx.body = await handle.executeUpdate(reassignUpdate, { args: [{ actor, from: body.from, to, reason: body.reason }] });
      },
    }),
    route({
      method: 'post',
      path: `${versionPath}/revision`,
      summary: 'Upload revised text after changes were requested; starts a new round and voids earlier signatures',
      tag: 'document approval',
      roles: ['author', 'document_control'],
      params: versionParams,
      body: contentBody,
      handler: async ({ params, body, actor, ctx }) => {
        const { row, handle } = await runningVersion(params.number, params.version);
        if (row.state !== 'changes_requested')
          throw problems.conflict('wrong-stage', `${row.number} v${row.version} is ${row.state}, not changes_requested`);
        if (row.author_id !== actor.userId) throw problems.forbidden('only the author may upload a revision');
        const contentHash = await storeContent(db, body.content);
        ctx.body = await handle.executeUpdate(uploadRevisionUpdate, { args: [{ actor, contentHash }] });
      },
    }),
  ];

  function actionRoute<B, A>(
    name: string,
    summary: string,
    body: ZodType<B>,
    toUpdate: (actor: Actor, body: B) => readonly [UpdateDefinition<unknown, [A]>, A],
  ): RouteSpec {
    return route({
      method: 'post',
      path: `${versionPath}/${name}`,
      summary,
      tag: 'document approval',
      roles: 'any',
      params: versionParams,
      body,
      handler: async ({ params, body: parsed, actor, ctx }) => {
        const { handle } = await runningVersion(params.number, params.version);
        const [update, args] = toUpdate(actor, parsed as B);
        ctx.body = await handle.executeUpdate(update, { args: [args] });
      },
    });
  }
}
