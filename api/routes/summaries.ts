import { durationMs } from '../../common/durations';
import type { Summarizer } from '../../common/soap-summary';
import { listSummaryJobs } from '../../db/summaries';
import type { ApiDeps } from '../deps';
import { PHI_ACCESS, phiAccessLog } from '../patient-access';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import * as R from '../schemas/responses';
import { listSummariesQuery, jobParams, patientParams, requestSummaryBody, requestSummaryQuery, reviewBody } from '../schemas/summaries';
import { requireLlmBudget } from '../services/llm-budget';
import { refuseRetired } from '../services/patients';
import { jobLocation, patientOfJob, reviewSummary, summaryJobView, summaryView, waitForReady } from '../services/soap-summary';
import { requestSummary } from '../temporal/soap-summary';

const TAG = 'summaries';

/** The clinical roles: PHI is theirs alone, and only for patients on their care team (api/patient-access.ts). */
const CLINICIAN = ['clinician'] as const;

export function summaryRoutes(deps: ApiDeps): RouteSpec[] {
  const { db, config } = deps;
  const phi = phiAccessLog(deps);

  return [
    route({
      method: 'post',
      path: '/patients/:id/summaries',
      response: { 200: R.summaryJob, 202: R.summaryJob }, problems: [409, 422],
      summary:
        'Summarize the patient’s SOAP notes as they are now: 202 with the job to poll (200 with the existing job for unchanged notes; with wait=10s, the summary when ready in time)',
      tag: TAG,
      roles: CLINICIAN,
      access: PHI_ACCESS,
      params: patientParams,
      query: requestSummaryQuery,
      body: requestSummaryBody,
      handler: async ({ params, query, body, actor, ctx }) => {
        await phi.guard(ctx, actor, params.id, 'summary_job');
        await refuseRetired(db, params.id);
        const providers = body.providers as Summarizer[] | undefined;
        const unavailable = providers?.filter((p) => p !== 'extractive' && !config.summary.providers.includes(p)) ?? [];
        if (unavailable.length) {
          throw problems.unprocessable('provider-not-configured', `not configured here: ${unavailable.join(', ')}`, {
            configured: config.summary.providers,
          });
        }
        await requireLlmBudget(deps, actor, providers ?? config.summary.providers);
        const { workflowId, created } = await requestSummary(deps, params.id, actor, providers);
        const ready = query.wait ? await waitForReady(deps, workflowId, Math.min(durationMs(query.wait), config.summary.maxWaitMs)) : false;
        // A run just started has nothing more to show; asking it would only cost the caller a round trip.
        const view =
          created && !ready
            ? { jobId: workflowId, patientId: params.id, stage: 'requested' }
            : await summaryJobView(deps, workflowId).catch((err) => {
                // Found running, but it has not written its row nor answered a query yet: it has only just started.
                if ((err as { status?: number }).status === 404) return { jobId: workflowId, patientId: params.id, stage: 'requested' };
                throw err;
              });
        const summary = ready && view.stage === 'ready' ? await summaryView(deps, workflowId) : undefined;
        await phi.read(
          ctx,
          actor,
          summary
            ? { kind: 'summary', patientIds: [params.id], recordIds: [summary.id] }
            : { kind: 'summary_job', patientIds: [params.id], recordIds: [workflowId] },
        );
        ctx.status = created && !ready ? 202 : 200;
        ctx.set('Location', jobLocation(workflowId));
        ctx.body = { ...view, created, location: jobLocation(workflowId), ...(summary ? { summary } : {}) };
      },
    }),
    route({
      method: 'get',
      path: '/patients/:id/summaries',
      response: R.summaryJobs,
      summary: 'The patient’s summary jobs, newest first',
      tag: TAG,
      roles: CLINICIAN,
      access: PHI_ACCESS,
      params: patientParams,
      query: listSummariesQuery,
      handler: async ({ params, query, actor, ctx }) => {
        await phi.guard(ctx, actor, params.id, 'summary_job_list');
        const rows = await listSummaryJobs(db, params.id, query);
        await phi.read(ctx, actor, { kind: 'summary_job_list', patientIds: [params.id], recordIds: rows.map((r) => r.workflow_id) });
        ctx.body = {
          items: rows.map((r) => ({
            jobId: r.workflow_id,
            stage: r.stage,
            provider: r.provider,
            round: r.round,
            requestedAt: r.requested_at,
            finishedAt: r.finished_at,
            summary: r.summary_id ? { id: r.summary_id, status: r.summary_status } : null,
            location: jobLocation(r.workflow_id),
          })),
          limit: query.limit,
          offset: query.offset,
        };
      },
    }),
    route({
      method: 'get',
      path: '/summary-jobs/:jobId',
      response: R.summaryJob,
      summary: 'A summary job: stage, the summarizer used and every attempt (provider, outcome, latency, tokens)',
      tag: TAG,
      roles: CLINICIAN,
      access: PHI_ACCESS,
      params: jobParams,
      handler: async ({ params, actor, ctx }) => {
        const patientId = patientOfJob(params.jobId);
        await phi.guard(ctx, actor, patientId, 'summary_job', [params.jobId]);
        const view = await summaryJobView(deps, params.jobId);
        await phi.read(ctx, actor, { kind: 'summary_job', patientIds: [patientId], recordIds: [params.jobId] });
        ctx.body = view;
      },
    }),
    route({
      method: 'get',
      path: '/summary-jobs/:jobId/summary',
      response: R.summary, problems: [409],
      summary: 'The summary with its provenance (provider, exact model, prompt version and hash, notes hashes, attempts, review)',
      tag: TAG,
      roles: CLINICIAN,
      access: PHI_ACCESS,
      params: jobParams,
      handler: async ({ params, actor, ctx }) => {
        const patientId = patientOfJob(params.jobId);
        await phi.guard(ctx, actor, patientId, 'summary', [params.jobId]);
        const summary = await summaryView(deps, params.jobId);
        await phi.read(ctx, actor, { kind: 'summary', patientIds: [patientId], recordIds: [summary.id] });
        ctx.body = summary;
      },
    }),
    route({
      method: 'post',
      path: '/summary-jobs/:jobId/review',
      response: R.summaryReviewed, problems: [409, 422, 423],
      summary: 'Approve or edit the summary (electronic signature), or reject it (a new one is made unless regenerate is false)',
      tag: TAG,
      roles: CLINICIAN,
      access: PHI_ACCESS,
      params: jobParams,
      body: reviewBody,
      handler: async ({ params, body, actor, ctx }) => {
        const patientId = patientOfJob(params.jobId);
        await phi.guard(ctx, actor, patientId, 'summary_job', [params.jobId]);
        const answer = await reviewSummary(deps, actor, params.jobId, body);
        // The decision itself is in the audit trail; the answer shows the job, which is a read like any other.
        await phi.read(ctx, actor, { kind: 'summary_job', patientIds: [patientId], recordIds: [params.jobId] });
        ctx.body = answer;
      },
    }),
  ];
}
