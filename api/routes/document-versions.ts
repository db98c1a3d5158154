import {
  completePeriodicReviewUpdate,
  decideUpdate,
  extendDueUpdate,
  obsoleteUpdate,
  reassignUpdate,
  uploadRevisionUpdate,
  withdrawUpdate,
} from '../../common/document-approval';
import { assigneeKey } from '../../common/assignees';
import { grantedArgs } from '../../common/grants';
import { storeContent } from '../../db/documents';
import type { ApiDeps } from '../deps';
import { route, updateRoute, type RouteSpec } from '../route';
import * as R from '../schemas/responses';
import {
  requireAssigneeFitsStage,
  loadVersion,
  requireNoDecisionThisRound,
  resolveAssignee,
  runAwaitingRevision,
  runningVersion,
  submitVersion,
  versionGrant,
} from '../services/document-approval';
import { verifySigner } from '../signing';
import { documentReviewActivity } from '../../db/gate';
import { requireGate } from '../services/training';
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

const versionPath = '/documents/:number/versions/:version';
const located = (number: string, version: number) => `/api/v1/documents/${number}/versions/${version}`;
const tag = 'document approval';

export function documentVersionRoutes(deps: ApiDeps): RouteSpec[] {
  const { db } = deps;
  const running = async ({ number, version }: { number: string; version: number }) => (await runningVersion(db, deps, number, version)).run;

  return [
    route({
      method: 'post',
      path: `${versionPath}/submit`,
      response: { 202: R.submitted }, problems: [409, 422],
      summary: 'Submit a draft version for review with its routing; answers 202 with the run to poll',
      tag,
      roles: ['author', 'document_control'],
      params: versionParams,
      body: submitBody,
      handler: async ({ params, body, actor, ctx }) => {
        const { row, run } = await submitVersion(deps, params.number, params.version, body, actor);
        const location = located(row.number, row.version);
        ctx.status = 202;
        ctx.set('Location', location);
        ctx.body = { workflowId: run.workflowId, runId: run.firstExecutionRunId, state: 'in_review', location };
      },
    }),
    updateRoute({
      method: 'post',
      path: `${versionPath}/decisions`,
      response: R.documentRunState, problems: [409, 422, 423],
      summary:
        'Approve (an electronic signature: password, meaning, content hash), reject or request changes; one stage per person per round',
      tag,
      roles: 'any',
      params: versionParams,
      body: decisionBody,
      run: running,
      update: decideUpdate,
      toArgs: async ({ params, body, actor }) => {
        await requireNoDecisionThisRound(db, params, actor);
        const { doc_type: docType } = await loadVersion(db, params.number, params.version);
        await requireGate(deps, actor, { activity: documentReviewActivity(docType) }, { entityType: 'document', entityId: params.number });
        const signature = body.signature
          ? await verifySigner(deps, actor, body.signature, { entityType: 'document', entityId: params.number })
          : undefined;
        const args = { decision: body.decision, comment: body.comment || undefined, signature };
        return { actor, ...args, grant: await versionGrant(deps, params, actor, 'document.decide', grantedArgs.decide(args), signature) };
      },
    }),
    updateRoute({
      method: 'post',
      path: `${versionPath}/withdraw`,
      response: R.documentRunState,
      summary: 'Withdraw a version from review (author or document control, reason required)',
      tag,
      roles: 'any',
      params: versionParams,
      body: reasonBody,
      run: running,
      update: withdrawUpdate,
      toArgs: async ({ params, body, actor }) => ({
        actor,
        reason: body.reason,
        grant: await versionGrant(deps, params, actor, 'document.withdraw', grantedArgs.withdraw(body)),
      }),
    }),
    updateRoute({
      method: 'post',
      path: `${versionPath}/obsolete`,
      response: R.documentRunState,
      summary: 'Retire an effective version (document control, reason required)',
      tag,
      roles: 'any',
      params: versionParams,
      body: reasonBody,
      run: running,
      update: obsoleteUpdate,
      toArgs: async ({ params, body, actor }) => ({
        actor,
        reason: body.reason,
        grant: await versionGrant(deps, params, actor, 'document.obsolete', grantedArgs.obsolete(body)),
      }),
    }),
    updateRoute({
      method: 'post',
      path: `${versionPath}/periodic-review`,
      response: R.documentRunState,
      summary: 'Record the periodic review of an effective version (document control)',
      tag,
      roles: 'any',
      params: versionParams,
      body: commentBody,
      run: running,
      update: completePeriodicReviewUpdate,
      toArgs: async ({ params, body, actor }) => ({
        actor,
        comment: body.comment,
        grant: await versionGrant(deps, params, actor, 'document.complete_periodic_review', grantedArgs.completePeriodicReview(body)),
      }),
    }),
    updateRoute({
      method: 'post',
      path: `${versionPath}/extend`,
      response: R.documentRunState,
      summary: "Move the current stage's due date later (document control, reason required)",
      tag,
      roles: 'any',
      params: versionParams,
      body: extendBody,
      run: running,
      update: extendDueUpdate,
      toArgs: async ({ params, body, actor }) => ({
        actor,
        dueAt: body.dueAt,
        reason: body.reason,
        grant: await versionGrant(deps, params, actor, 'document.extend_due', grantedArgs.extendDue(body)),
      }),
    }),
    updateRoute({
      method: 'post',
      path: `${versionPath}/reassign`,
      response: R.documentRunState, problems: [422],
      summary: 'Hand an undecided review slot of the current stage to someone else (document control, reason required)',
      tag,
      roles: ['document_control'],
      params: versionParams,
      body: reassignBody,
      run: running,
      update: reassignUpdate,
      toArgs: async ({ params, body, actor }) => {
        const to = await resolveAssignee(db, body.to, 'body.to');
        await requireAssigneeFitsStage(db, params, to);
        const args = { from: body.from, to: assigneeKey(to), reason: body.reason };
        return {
          actor,
          from: body.from,
          to,
          reason: body.reason,
          grant: await versionGrant(deps, params, actor, 'document.reassign', grantedArgs.reassign(args)),
        };
      },
    }),
    updateRoute({
      method: 'post',
      path: `${versionPath}/revision`,
      response: R.documentRunState,
      summary: 'Upload revised text after changes were requested; starts a new round and voids earlier signatures',
      tag,
      roles: ['author', 'document_control'],
      params: versionParams,
      body: contentBody,
      run: (params, actor) => runAwaitingRevision(deps, params.number, params.version, actor),
      update: uploadRevisionUpdate,
      toArgs: async ({ params, body, actor }) => {
        const contentHash = await storeContent(db, body.content);
        const grant = await versionGrant(deps, params, actor, 'document.upload_revision', grantedArgs.uploadRevision({ contentHash }));
        return { actor, contentHash, grant };
      },
    }),
  ];
}
