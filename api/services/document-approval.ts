import { WorkflowExecutionAlreadyStartedError, type WorkflowHandle } from '@temporalio/client';
import { assigneeKey, type AssigneeRef } from '../../common/assignees';
import { documentStateQuery, FINAL_VERSION_STATES, type DocumentApprovalState, type StageRule } from '../../common/document-approval';
import { workflowIds } from '../../common/ids';
import type { Actor, Role } from '../../common/roles';
import { routingProblems } from '../../common/routing-rules';
import { templateRoutingProblems, templateStage, type RoutingProblem } from '../../common/routing-templates';
import { findVersion, listSignatures, type VersionRow } from '../../db/documents';
import { findActiveUser, findActiveUsers } from '../../db/identity';
import type { Db } from '../../db/knex';
import { findRoutingTemplate, rolesOfUsers } from '../../db/routing-templates';
import type { documentApprovalWorkflow } from '../../workflows';
import type { ApiDeps } from '../deps';
import { liveOrRecorded } from '../live-or-recorded';
import { problems } from '../problem';
import { grantedArgs, type DocumentAction } from '../../common/grants';
import type { SignatureInput } from '../../common/signatures';
import { grantAction } from '../signing';
import { approvalInput, approvalRun, liveApprovalRun, startApprovalRun } from '../temporal/document-approval';
import { checkTimers } from './timer-bounds';
import { trainingProposal } from './training';
import { proposeTraining } from '../../db/training';
import type { TrainingImpact, TrainingRequirementInput } from '../../common/training';

type ApprovalRun = WorkflowHandle<typeof documentApprovalWorkflow>;
type AssigneeInput = { user: string } | { role: Role };

export async function loadVersion(db: Db, number: string, version: number): Promise<VersionRow> {
  const row = await findVersion(db, number, version);
  if (!row) throw problems.notFound(`version ${version} of document ${number}`);
  return row;
}

/** The part of a version's answer that the run knows better while it runs: from the run, or from the record. */
interface VersionProgress {
  state: DocumentApprovalState['state'];
  contentHash: string;
  round: number;
  workflowId: string | null;
  stage: string | null;
  assignees: string[];
  dueAt: string | Date | null;
  nextReviewAt: string | Date | null;
}
/**
 * The stage a reader can act on: named once its opening is recorded (its tasks exist, the record and the run agree
 * and decisions are accepted), so someone who waits for it never meets a refusal for a stage still being opened.
 */
const openStage = (process: DocumentApprovalState): string | null => {
  const stage = process.currentStage === null ? undefined : process.stages[process.currentStage];
  return stage && stage.status !== 'pending' ? stage.name : null;
};
const fromRun = (process: DocumentApprovalState): VersionProgress => ({
  state: process.state,
  contentHash: process.contentHash,
  round: process.round,
  workflowId: process.workflowId,
  stage: openStage(process),
  assignees: process.pendingAssignees,
  dueAt: process.dueAt,
  nextReviewAt: process.nextPeriodicReviewAt,
});
const fromRecord = (row: VersionRow): VersionProgress => ({
  state: row.state,
  contentHash: row.content_hash,
  round: row.round,
  workflowId: row.workflow_id,
  stage: row.stage_name,
  assignees: row.assignees,
  dueAt: row.due_at,
  nextReviewAt: row.next_review_at,
});

/** The record, with the run's live state while it runs (stage, slots, decisions, due dates). */
export async function versionView(deps: ApiDeps, row: VersionRow) {
  // The signatures are read while the run is queried: two independent round trips at once.
  const signatures = listSignatures(deps.db, row.id);
  signatures.catch(() => undefined); // awaited below; this only keeps a query failure from going unhandled meanwhile
  const read = await liveOrRecorded({
    run: liveApprovalRun(deps.temporal, row),
    query: documentStateQuery,
    fromLive: fromRun,
    recorded: fromRecord(row),
  });
  const { view, live: process } = read ?? { view: fromRecord(row), live: null };
  return {
    number: row.number,
    title: row.title,
    version: row.version,
    author: row.author,
    state: view.state,
    contentHash: view.contentHash,
    round: view.round,
    workflowId: view.workflowId,
    stage: view.stage,
    assignees: view.assignees,
    dueAt: view.dueAt,
    submittedAt: row.submitted_at,
    approvedAt: row.approved_at,
    effectiveAt: row.effective_at,
    closedAt: row.closed_at,
    nextReviewAt: view.nextReviewAt,
    live: process !== null,
    process,
    signatures: await signatures,
  };
}

/** The run of a submitted version that has not ended; 409 for a draft or a finished version. */
export async function runningVersion(db: Db, deps: Pick<ApiDeps, 'temporal'>, number: string, version: number) {
  const row = await loadVersion(db, number, version);
  if (!row.workflow_id || row.state === 'draft')
    throw problems.conflict('not-submitted', `${number} v${version} has not been submitted for review`);
  if (FINAL_VERSION_STATES.includes(row.state))
    throw problems.conflict('run-finished', `${number} v${version} is ${row.state}; nothing more can be done`);
  return { row, run: approvalRun(deps.temporal, row.workflow_id) };
}

/**
 * The run waiting for the author's revision; only the author may revise (document control, once the author was
 * deactivated), and only after changes were requested.
 */
export async function runAwaitingRevision(deps: ApiDeps, number: string, version: number, actor: Actor): Promise<ApprovalRun> {
  const { row, run } = await runningVersion(deps.db, deps, number, version);
  if (row.state !== 'changes_requested')
    throw problems.conflict('wrong-stage', `${row.number} v${row.version} is ${row.state}, not changes_requested`);
  if (row.author_id === actor.userId) return run;
  const authorGone = actor.roles.includes('document_control') && (await deps.db('users').where({ id: row.author_id, active: false }).first('id'));
  if (!authorGone) throw problems.forbidden('only the author may upload a revision (document control, once the author was deactivated)');
  return run;
}

/**
 * Writes the grant for one action a caller may take on a version's run; the run's ID is the version's business
 * key. `args` are the arguments the run will record, built with common/grants' grantedArgs.
 */
export function versionGrant(
  deps: ApiDeps,
  at: { number: string; version: number },
  actor: Actor,
  action: DocumentAction,
  args: unknown,
  signature?: SignatureInput,
): Promise<string> {
  return grantAction(deps, actor, { workflowId: workflowIds.documentApproval(at.number, at.version), action, args, signature });
}

const draftCancelled = (row: VersionRow) =>
  problems.conflict('draft-cancelled', `${row.number} v${row.version} was cancelled by document control; add a new version`);

const unknownUser = (username: string, field: string) =>
  problems.unprocessable('unknown-user', `no active user "${username}"`, { errors: [{ field, detail: 'unknown user' }] });

/** Every stage's assignees, the named users looked up in one query; unknown or inactive users are a 422. */
async function resolveRouting(db: Db, routing: { assignees: AssigneeInput[] }[]): Promise<AssigneeRef[][]> {
  const usernames = [...new Set(routing.flatMap((stage) => stage.assignees.flatMap((a) => ('user' in a ? [a.user] : []))))];
  const byName = new Map((await findActiveUsers(db, usernames)).map((user) => [user.username, user]));
  return routing.map((stage, i) =>
    stage.assignees.map((a, j): AssigneeRef => {
      if ('role' in a) return { kind: 'role', role: a.role };
      const user = byName.get(a.user);
      if (!user) throw unknownUser(a.user, `body.routing.${i}.assignees.${j}`);
      return { kind: 'user', userId: user.id, username: user.username };
    }),
  );
}

/** A named user (active) or a role, as a review slot's assignee; an unknown user is a 422 on `field`. */
export async function resolveAssignee(db: Db, input: AssigneeInput, field: string): Promise<AssigneeRef> {
  if ('role' in input) return { kind: 'role', role: input.role };
  const user = await findActiveUser(db, input.user);
  if (!user) throw unknownUser(input.user, field);
  return { kind: 'user', userId: user.id, username: user.username };
}

/**
 * Document control (or the lab director) may shorten a review's deadlines below the configured ones; an author
 * submitting their own document takes the configured deadlines.
 */
function checkReviewTimers(actor: Actor, request: SubmitRequest, defaults: ApiDeps['config']['documentDefaults']) {
  const rule = { roles: ['document_control', 'lab_director'] as const, what: 'review deadlines' };
  request.routing.forEach((stage, i) =>
    checkTimers(actor, { due: stage.due }, { ...rule, ceilings: { due: defaults.stageDue }, prefix: `body.routing.${i}.` }),
  );
  const { reminderBefore, periodicReview } = request;
  checkTimers(actor, { reminderBefore, periodicReview }, { ...rule, ceilings: { ...defaults }, prefix: 'body.' });
}

const bodyField = (field: string) => `body.${field.replace(/\[(\d+)\]/g, '.$1')}`;
const routingProblem = (type: string, errors: RoutingProblem[]) =>
  problems.unprocessable(type, errors.map((e) => e.detail).join('; '), {
    errors: errors.map((e) => ({ ...e, field: bodyField(e.field) })),
  });

/**
 * The routing must fit the template of the document's type: its stages, their order, who may sign each (named
 * users by the roles Postgres gives them now), document control last where the template says so. A 422 naming
 * each problem otherwise, before anything is written.
 */
async function checkTemplate(db: Db, row: VersionRow, routing: Parameters<typeof templateRoutingProblems>[0]) {
  const template = await findRoutingTemplate(db, row.doc_type);
  if (!template) {
    throw problems.unprocessable('no-routing-template', `documents of type ${row.doc_type} have no routing template; ask document control`);
  }
  const userIds = routing.flatMap((stage) => stage.assignees.flatMap((a) => (a.kind === 'user' ? [a.userId] : [])));
  const roles = await rolesOfUsers(db, [...new Set(userIds)]);
  const errors = templateRoutingProblems(routing, template, (userId) => roles.get(userId) ?? []);
  if (errors.length) throw routingProblem('routing-template', errors);
}

export interface SubmitRequest {
  routing: { name: string; rule: StageRule; assignees: AssigneeInput[]; due?: string }[];
  reminderBefore?: string;
  effectiveDate?: string;
  periodicReview?: string;
  training?: TrainingRequirementInput;
  trainingImpact?: TrainingImpact;
}

/** Submits a draft for review: checks the version, the submitter and the routing, then starts its run. */
export async function submitVersion(deps: ApiDeps, number: string, version: number, request: SubmitRequest, actor: Actor) {
  const { db, temporal, config } = deps;
  // The routing's users are looked up while the version is read (one round trip fewer on the way to the start);
  // the version's own problems (404, 409, 403) still answer before an unknown user's 422.
  const resolving = resolveRouting(db, request.routing);
  resolving.catch(() => undefined); // awaited below, unless the version's problem answers first
  const row = await loadVersion(db, number, version);
  const workflowId = workflowIds.documentApproval(row.number, row.version);
  const alreadySubmitted = () =>
    problems.conflict(
      'already-submitted',
      `${row.number} v${row.version} has already been submitted (run ${row.workflow_id ?? workflowId})`,
      {
        workflowId: row.workflow_id ?? workflowId,
      },
    );
  if (row.state === 'withdrawn' && !row.workflow_id) throw draftCancelled(row);
  if (row.state !== 'draft' || row.workflow_id) throw alreadySubmitted();
  if (row.author_id !== actor.userId && !actor.roles.includes('document_control')) {
    throw problems.forbidden('only the author or document control may submit this version');
  }
  checkReviewTimers(actor, request, config.documentDefaults);
  const assignees = await resolving;
  const routing = request.routing.map((stage, i) => ({
    name: stage.name,
    rule: stage.rule,
    due: stage.due ?? config.documentDefaults.stageDue,
    assignees: assignees[i],
  }));
  const errors = routingProblems(routing, row.author_id);
  if (errors.length) throw routingProblem('invalid-routing', errors);
  await checkTemplate(db, row, routing);
  const training = await trainingProposal(db, actor, row, request);
  const input = approvalInput(row, routing, {
    reminderBefore: request.reminderBefore ?? config.documentDefaults.reminderBefore,
    effectiveDate: request.effectiveDate,
    periodicReview: request.periodicReview ?? config.documentDefaults.periodicReview,
    submittedBy: actor.userId,
  });
  // Written while the version is locked and still a draft, so document control cancelling it at the same moment
  // either sees the submission under way or wins and the submission is refused.
  const submissionGrant = await db.transaction(async (trx) => {
    const now = await trx('document_versions').where({ id: row.id }).forNoKeyUpdate().first('state', 'workflow_id');
    if (now?.state === 'withdrawn' && !now.workflow_id) throw draftCancelled(row);
    if (now?.state !== 'draft' || now.workflow_id) throw alreadySubmitted();
    await proposeTraining(trx, row.id, training);
    return versionGrant({ ...deps, db: trx as unknown as Db }, row, actor, 'document.submit', grantedArgs.submit(input));
  });
  // A concurrent submission of the same version may win the race past the check above: same answer.
  const run = await startApprovalRun(temporal, config.taskQueue, { ...input, submissionGrant }).catch((err) => {
    throw err instanceof WorkflowExecutionAlreadyStartedError ? alreadySubmitted() : err;
  });
  return { row, run };
}

/**
 * One person signs at most one stage per round, and each stage once: a caller who already decided a stage of the
 * version's current round is refused before a grant is written (the run's validator and recording step refuse
 * it too). The round and the decisions are read from the record the run keeps (the review tasks each decision closes).
 */
export async function requireNoDecisionThisRound(db: Db, at: { number: string; version: number }, actor: Actor): Promise<void> {
  // One round trip: the version's run and round, and a review task of that round the caller closed.
  const decided = await db('tasks as t')
    .join('document_versions as v', 'v.workflow_id', 't.workflow_id')
    .join('documents as d', 'd.id', 'v.document_id')
    .where({ 'd.number': at.number, 'v.version': at.version, 't.state': 'done', 't.closed_by': actor.userId })
    // Workflow IDs are business keys without LIKE wildcards (document numbers are [A-Z0-9-]).
    .whereRaw(`t.task_key like v.workflow_id || ':r' || v.round || ':s%'`)
    .first('t.title', 'v.round');
  if (!decided) return;
  const stage = /\(([^()]*)\)$/.exec(decided.title as string)?.[1];
  throw problems.conflict(
    'duplicate-decision',
    `${actor.username} already decided ${stage ? `stage "${stage}"` : 'a stage'} in round ${decided.round} of ${at.number} v${at.version}; ` +
      'one person signs at most one stage per round',
  );
}

/**
 * A review slot handed to someone else stays within the template: the new assignee must hold one of the roles of
 * the stage being reassigned (a 422 on body.to otherwise). Stages of runs submitted before templates existed, or
 * of a template since edited to drop them, keep the routing they were started with.
 */
export async function requireAssigneeFitsStage(db: Db, at: { number: string; version: number }, to: AssigneeRef): Promise<void> {
  const row = await loadVersion(db, at.number, at.version);
  // The author is refused by the run with its own reason (nobody reviews their own version).
  if (to.kind === 'user' && to.userId === row.author_id) return;
  const template = row.stage_name ? await findRoutingTemplate(db, row.doc_type) : undefined;
  const stage = template && row.stage_name ? templateStage(template, row.stage_name) : undefined;
  if (!stage) return;
  const roles = to.kind === 'role' ? [to.role] : ((await rolesOfUsers(db, [to.userId])).get(to.userId) ?? []);
  if (roles.some((role) => stage.roles.includes(role))) return;
  const detail = `${assigneeKey(to)} may not sign stage "${stage.name}" of a ${row.doc_type} (roles allowed: ${stage.roles.join(', ')})`;
  throw problems.unprocessable('routing-template', detail, { errors: [{ field: 'body.to', detail }] });
}
