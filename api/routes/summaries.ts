import { createHash } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/common';
import { durationMs } from '../../common/durations';
import {
  FINAL_SUMMARY_STAGES,
  reviewSummaryUpdate,
  summaryStateQuery,
  type Summarizer,
  type SummaryState,
} from '../../common/soap-summary';
import type { Actor } from '../../common/roles';
import { listSignaturesFor } from '../../db/signatures';
import type { ApiDeps } from '../deps';
import { PHI_ACCESS, requirePatientAccess } from '../patient-access';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import { listSummariesQuery, jobParams, patientParams, requestSummaryBody, requestSummaryQuery, reviewBody } from '../schemas/summaries';
import { verifySigner } from '../signing';
import { requestSummary } from '../soap-summary-runs';

const TAG = 'summaries';
const jobLocation = (jobId: string) => `/api/v1/summary-jobs/${encodeURIComponent(jobId)}`;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const patientOfJob = (jobId: string) => jobId.split(':')[1];

/** The clinical roles: PHI is theirs alone, and only for patients on their care team (api/patient-access.ts). */
const CLINICIAN = ['clinician'] as const;

export function summaryRoutes(deps: ApiDeps): RouteSpec[] {
  const { db, temporal, config } = deps;

  async function liveState(jobId: string): Promise<SummaryState | null> {
    try {
      return await temporal.workflow.getHandle(jobId).query(summaryStateQuery);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
  }

  /** The job as recorded, with the run's live state while it runs; attempts come from the database. */
  async function jobView(jobId: string) {
    const [row, attempts] = await Promise.all([
      db('summary_jobs').where({ workflow_id: jobId }).first(),
      db('summary_attempts')
        .where({ workflow_id: jobId })
        .orderBy('started_at')
        .select(
          'round',
          'provider',
          'model',
          'outcome',
          'error_detail',
          'latency_ms',
          'input_tokens',
          'output_tokens',
          'max_tokens',
          'started_at',
        ),
    ]);
    const live = !row || !FINAL_SUMMARY_STAGES.includes(row.stage) ? await liveState(jobId) : null;
    if (!row && !live) throw problems.notFound(`summary job ${jobId}`);
    const stage = live?.stage ?? row.stage;
    const summary = await db('summaries').where({ workflow_id: jobId }).orderBy('round', 'desc').first('id', 'round', 'status');
    return {
      jobId,
      patientId: patientOfJob(jobId),
      stage,
      round: live?.round ?? row?.round ?? 1,
      providers: live?.providers ?? row?.providers ?? [],
      provider: live?.provider ?? row?.provider ?? null,
      requestedAt: row?.requested_at ?? null,
      finishedAt: row?.finished_at ?? null,
      attempts: attempts.map((a) => ({
        round: a.round,
        provider: a.provider,
        model: a.model,
        outcome: a.outcome,
        detail: a.error_detail,
        latencyMs: a.latency_ms,
        inputTokens: a.input_tokens,
        outputTokens: a.output_tokens,
        maxTokens: a.max_tokens,
        startedAt: a.started_at,
      })),
      summary: summary ? { id: summary.id, round: summary.round, status: summary.status, location: `${jobLocation(jobId)}/summary` } : null,
      live: live !== null,
    };
  }

  async function summaryView(jobId: string) {
    const row = await db('summaries').where({ workflow_id: jobId }).orderBy('round', 'desc').first();
    if (!row) throw problems.notFound(`a summary for job ${jobId} (it may still be generating)`);
    const reviewer = row.reviewed_by ? await db('users').where({ id: row.reviewed_by }).first('username', 'printed_name') : null;
    const attempts = await db('summary_attempts')
      .where({ workflow_id: jobId, round: row.round })
      .orderBy('started_at')
      .select('provider', 'model', 'outcome', 'latency_ms', 'input_tokens', 'output_tokens');
    return {
      id: row.id,
      jobId,
      round: row.round,
      status: row.status,
      text: row.edited_text ?? row.text,
      generatedText: row.text,
      aiGenerated: row.ai_generated,
      contentHash: row.edited_content_hash ?? row.content_hash,
      provenance: {
        provider: row.provider,
        model: row.model,
        promptVersion: row.prompt_version,
        promptHash: row.prompt_hash,
        parameters: row.parameters,
        notesHash: row.notes_hash,
        notes: row.note_hashes,
        validation: { ok: row.validation.ok, issues: row.validation.issues, coverage: row.validation.coverage },
        attempts: attempts.map((a) => ({
          provider: a.provider,
          model: a.model,
          outcome: a.outcome,
          latencyMs: a.latency_ms,
          inputTokens: a.input_tokens,
          outputTokens: a.output_tokens,
        })),
      },
      review: row.review_decision
        ? {
            decision: row.review_decision,
            by: reviewer?.username ?? null,
            printedName: reviewer?.printed_name ?? null,
            comment: row.review_comment,
            at: row.reviewed_at,
          }
        : null,
      signatures: await listSignaturesFor(db, 'soap-summary', row.id),
      createdAt: row.created_at,
    };
  }

  /** Waits for the job to reach review (or an end) within the bound; false when it has not. */
  async function waitForReady(jobId: string, waitMs: number): Promise<boolean> {
    const until = Date.now() + Math.min(waitMs, config.summary.maxWaitMs);
    for (;;) {
      const state = await liveState(jobId);
      if (!state || state.stage === 'ready' || FINAL_SUMMARY_STAGES.includes(state.stage)) return true;
      if (Date.now() >= until) return false;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function jobAccess(jobId: string, actor: Actor) {
    await requirePatientAccess(db, actor, patientOfJob(jobId));
  }

  return [
    route({
      method: 'post',
      path: '/patients/:id/summaries',
      summary:
        'Summarize the patient’s SOAP notes as they are now: 202 with the job to poll (200 with the existing job for unchanged notes; with wait=10s, the summary when ready in time)',
      tag: TAG,
      roles: CLINICIAN,
      access: PHI_ACCESS,
      params: patientParams,
      query: requestSummaryQuery,
      body: requestSummaryBody,
      handler: async ({ params, query, body, actor, ctx }) => {
        await requirePatientAccess(db, actor, params.id);
        const providers = body.providers as Summarizer[] | undefined;
        const unavailable = providers?.filter((p) => p !== 'extractive' && !config.summary.providers.includes(p)) ?? [];
        if (unavailable.length) {
          throw problems.unprocessable('provider-not-configured', `not configured here: ${unavailable.join(', ')}`, {
            configured: config.summary.providers,
          });
        }
        const { workflowId, created } = await requestSummary(deps, params.id, actor, providers);
        const ready = query.wait ? await waitForReady(workflowId, durationMs(query.wait)) : false;
        // A run just started has nothing more to show; asking it would only cost the caller a round trip.
        const view =
          created && !ready
            ? { jobId: workflowId, patientId: params.id, stage: 'requested' }
            : await jobView(workflowId).catch((err) => {
                // Found running, but it has not written its row nor answered a query yet: it has only just started.
                if ((err as { status?: number }).status === 404) return { jobId: workflowId, patientId: params.id, stage: 'requested' };
                throw err;
              });
        ctx.status = created && !ready ? 202 : 200;
        ctx.set('Location', jobLocation(workflowId));
        ctx.body = {
          ...view,
          created,
          location: jobLocation(workflowId),
          ...(ready && view.stage === 'ready' ? { summary: await summaryView(workflowId) } : {}),
        };
      },
    }),
    route({
      method: 'get',
      path: '/patients/:id/summaries',
      summary: 'The patient’s summary jobs, newest first',
      tag: TAG,
      roles: CLINICIAN,
      access: PHI_ACCESS,
      params: patientParams,
      query: listSummariesQuery,
      handler: async ({ params, query, actor, ctx }) => {
        await requirePatientAccess(db, actor, params.id);
        const rows = await db('summary_jobs as j')
          .leftJoin('summaries as s', function () {
            this.on('s.workflow_id', 'j.workflow_id').andOn('s.round', 'j.round');
          })
          .where('j.patient_id', params.id)
          .orderBy('j.requested_at', 'desc')
          .limit(query.limit)
          .offset(query.offset)
          .select(
            'j.workflow_id',
            'j.stage',
            'j.provider',
            'j.round',
            'j.requested_at',
            'j.finished_at',
            's.id as summary_id',
            's.status as summary_status',
          );
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
      summary: 'A summary job: stage, the summarizer used and every attempt (provider, outcome, latency, tokens)',
      tag: TAG,
      roles: CLINICIAN,
      access: PHI_ACCESS,
      params: jobParams,
      handler: async ({ params, actor, ctx }) => {
        await jobAccess(params.jobId, actor);
        ctx.body = await jobView(params.jobId);
      },
    }),
    route({
      method: 'get',
      path: '/summary-jobs/:jobId/summary',
      summary: 'The summary with its provenance (provider, exact model, prompt version and hash, notes hashes, attempts, review)',
      tag: TAG,
      roles: CLINICIAN,
      access: PHI_ACCESS,
      params: jobParams,
      handler: async ({ params, actor, ctx }) => {
        await jobAccess(params.jobId, actor);
        ctx.body = await summaryView(params.jobId);
      },
    }),
    route({
      method: 'post',
      path: '/summary-jobs/:jobId/review',
      summary: 'Approve or edit the summary (electronic signature), or reject it (a new one is made unless regenerate is false)',
      tag: TAG,
      roles: CLINICIAN,
      access: PHI_ACCESS,
      params: jobParams,
      body: reviewBody,
      handler: async ({ params, body, actor, ctx }) => {
        await jobAccess(params.jobId, actor);
        const current = await db('summaries').where({ workflow_id: params.jobId }).orderBy('round', 'desc').first('id', 'status');
        if (!current) throw problems.conflict('wrong-stage', 'there is no summary awaiting review yet');
        let editId: string | undefined;
        let signature;
        if (body.decision === 'edit' && body.signature.contentHash !== sha256(body.text)) {
          throw problems.unprocessable('content-hash-mismatch', 'signature.contentHash must be the SHA-256 of the edited text you sign');
        }
        if (body.decision !== 'reject') {
          signature = await verifySigner(deps, actor, body.signature, { entityType: 'soap-summary', entityId: current.id });
        }
        if (body.decision === 'edit') {
          const [edit] = await db('summary_edits')
            .insert({ summary_id: current.id, text: body.text, content_hash: sha256(body.text), author_id: actor.userId })
            .returning('id');
          editId = edit.id;
        }
        let commentId: string | undefined;
        if (body.comment) {
          const [comment] = await db('summary_review_comments')
            .insert({ summary_id: current.id, text: body.comment, author_id: actor.userId })
            .returning('id');
          commentId = comment.id;
        }
        try {
          const state = await temporal.workflow.getHandle(params.jobId).executeUpdate(reviewSummaryUpdate, {
            args: [
              {
                actor,
                decision: body.decision,
                summaryId: current.id,
                signature,
                editId,
                commentId,
                regenerate: body.decision === 'reject' ? body.regenerate : undefined,
              },
            ],
          });
          ctx.body = { job: await jobView(params.jobId), stage: state.stage, round: state.round };
        } catch (err) {
          // A refused review leaves no text behind.
          if (editId) await db('summary_edits').where({ id: editId }).delete();
          if (commentId) await db('summary_review_comments').where({ id: commentId }).delete();
          throw err;
        }
      },
    }),
  ];
}
