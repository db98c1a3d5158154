import { randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import {
  coaGrantedArgs,
  coaWorkflowId,
  confirmCoaUpdate,
  rejectCoaUpdate,
  type CoaConfirmedFields,
  type CoaExtractionInput,
  type CoaProvider,
} from '../../common/coa-extraction';
import { incomingInspection } from '../../db/incoming-inspections';
import { validateCoaProposal } from '../../activities/llm/coa';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import { FAILURE_HTTP_STATUS } from '../../common/failures';
import * as R from '../schemas/responses';
import { coaParams, confirmCoaBody, inspectionParams, rejectCoaBody, startCoaBody } from '../schemas/coa-extraction';
import { grantAction } from '../signing';
import type { coaExtractionWorkflow } from '../../workflows';

const TAG = 'coa-extraction';
/** Incoming inspection is quality's: they start extractions, read them and confirm their fields. */
const QUALITY = ['qa_manager'] as const;
/** An incoming inspection's recorded values are read by quality and the lab that works its sample. */
const INSPECTION_READERS = ['qa_manager', 'lab_technician', 'lab_director'] as const;
const LLM_PROVIDERS: readonly string[] = ['anthropic', 'openai', 'ollama'] satisfies CoaProvider[];

async function extractionView({ db }: Pick<ApiDeps, 'db'>, id: string) {
  const row = await db('coa_extractions as c')
    .leftJoin('users as u', 'u.id', 'c.confirmed_by')
    .leftJoin('users as r', 'r.id', 'c.rejected_by')
    .where('c.id', id)
    .first('c.*', 'u.username as confirmed_by_username', 'r.username as rejected_by_username');
  if (!row) throw problems.notFound(`CoA extraction ${id}`);
  return {
    id: row.id,
    workflowId: row.workflow_id,
    sampleId: row.sample_id,
    stage: row.stage,
    proposal: row.validation?.accepted ?? null,
    issues: row.validation?.issues ?? [],
    provenance: {
      source: row.source,
      aiGenerated: row.ai_generated,
      model: row.model,
      promptVersion: row.prompt_version,
      promptHash: row.prompt_hash,
      attempts: row.attempts,
    },
    confirmed: row.confirmed_fields
      ? {
          fields: row.confirmed_fields,
          corrections: row.corrections ?? [],
          by: row.confirmed_by_username,
          at: new Date(row.confirmed_at).toISOString(),
        }
      : null,
    rejected: row.rejected_at
      ? { by: row.rejected_by_username, at: new Date(row.rejected_at).toISOString(), reason: row.rejection_reason }
      : null,
  };
}

/** The providers the summary asks (not its extractive last resort: an extraction's is the rules), and its attempt policy. */
function runInput(deps: ApiDeps, extractionId: string): CoaExtractionInput {
  const { providers, attempt } = deps.config.summary;
  return {
    extractionId,
    providers: providers.filter((p): p is CoaProvider => LLM_PROVIDERS.includes(p)),
    attempt: { timeout: attempt.timeout, maxAttempts: attempt.maxAttempts, maxTokens: attempt.maxTokens },
  };
}

/** The extraction must await a decision before a grant is written for one. */
async function awaitingDecision(db: ApiDeps['db'], id: string) {
  const row = await db('coa_extractions').where({ id }).first('text', 'stage');
  if (!row) throw problems.notFound(`CoA extraction ${id}`);
  if (row.stage !== 'proposed') throw problems.conflict('wrong-stage', `the extraction is ${row.stage}, not awaiting confirmation`);
  return row as { text: string; stage: string };
}

export function coaExtractionRoutes(deps: ApiDeps): RouteSpec[] {
  const { db } = deps;
  return [
    route({
      method: 'post',
      path: '/coa-extractions',
      response: { 202: R.coaExtraction },
      problems: [422],
      summary:
        'Extract the fields of a supplier’s certificate of analysis (provider chain, rule-based last resort) for a person to confirm',
      tag: TAG,
      roles: QUALITY,
      body: startCoaBody,
      handler: async ({ body, actor, ctx }) => {
        if (body.sampleId) {
          const sample = await db('samples').where({ id: body.sampleId }).first('sample_type');
          if (!sample) throw problems.unprocessable('unknown-sample', `sample ${body.sampleId} does not exist`);
          if (sample.sample_type !== 'INCOMING')
            throw problems.unprocessable('not-incoming-inspection', 'the sample is not an incoming-inspection sample');
        }
        const row = { id: randomUUID() };
        const workflowId = coaWorkflowId(row.id);
        await db('coa_extractions').insert({
          id: row.id,
          workflow_id: workflowId,
          text: body.text,
          sample_id: body.sampleId ?? null,
          requested_by: actor.userId,
        });
        try {
          await deps.temporal.workflow.start<typeof coaExtractionWorkflow>('coaExtractionWorkflow', {
            workflowId,
            taskQueue: deps.config.taskQueue,
            args: [runInput(deps, row.id)],
          });
        } catch (err) {
          if (!(err instanceof WorkflowExecutionAlreadyStartedError)) {
            await db('coa_extractions').where({ id: row.id }).delete();
            throw err;
          }
        }
        ctx.status = 202;
        ctx.set('Location', `/api/v1/coa-extractions/${row.id}`);
        ctx.body = await extractionView(deps, row.id);
      },
    }),
    route({
      method: 'get',
      path: '/coa-extractions/:id',
      response: R.coaExtraction,
      summary: 'A CoA extraction: the proposed fields, why any were refused, its provenance, and what was confirmed',
      tag: TAG,
      roles: QUALITY,
      params: coaParams,
      handler: async ({ params, ctx }) => {
        ctx.body = await extractionView(deps, params.id);
      },
    }),
    route({
      method: 'post',
      path: '/coa-extractions/:id/confirm',
      response: R.coaExtraction,
      problems: [...new Set([409, 422, ...Object.values(FAILURE_HTTP_STATUS)])],
      summary:
        'Confirm the proposed fields, or correct them (every value must be written in the certificate); only then are they recorded, and become the incoming inspection’s recorded values when the extraction names its sample',
      tag: TAG,
      roles: QUALITY,
      params: coaParams,
      body: confirmCoaBody,
      handler: async ({ params, body, actor, ctx }) => {
        const row = await awaitingDecision(db, params.id);
        const verdict = validateCoaProposal(row.text, body.fields);
        if (!verdict.ok) {
          throw problems.unprocessable('not-in-certificate', 'every confirmed value must be written in the certificate', {
            issues: verdict.issues,
          });
        }
        const workflowId = coaWorkflowId(params.id);
        const fields: CoaConfirmedFields = body.fields;
        const grant = await grantAction(deps, actor, {
          workflowId,
          action: 'coa.confirm',
          args: coaGrantedArgs.confirm({ extractionId: params.id, fields }),
        });
        await deps.temporal.workflow.getHandle(workflowId).executeUpdate(confirmCoaUpdate, { args: [{ actor, grant, fields }] });
        ctx.body = await extractionView(deps, params.id);
      },
    }),
    route({
      method: 'post',
      path: '/coa-extractions/:id/reject',
      response: R.coaExtraction,
      problems: [...new Set([409, ...Object.values(FAILURE_HTTP_STATUS)])],
      summary: 'Reject the proposed fields with a reason: the extraction ends and nothing is recorded (nor on the inspection)',
      tag: TAG,
      roles: QUALITY,
      params: coaParams,
      body: rejectCoaBody,
      handler: async ({ params, body, actor, ctx }) => {
        await awaitingDecision(db, params.id);
        const workflowId = coaWorkflowId(params.id);
        const grant = await grantAction(deps, actor, {
          workflowId,
          action: 'coa.reject',
          args: coaGrantedArgs.reject({ extractionId: params.id, reason: body.reason }),
        });
        await deps.temporal.workflow.getHandle(workflowId).executeUpdate(rejectCoaUpdate, { args: [{ actor, grant, reason: body.reason }] });
        ctx.body = await extractionView(deps, params.id);
      },
    }),
    route({
      method: 'get',
      path: '/incoming-inspections/:sampleId',
      response: R.incomingInspection,
      summary:
        'An incoming inspection (its INCOMING sample): the recorded values, each version naming the CoA extraction it came from and who confirmed it when',
      tag: TAG,
      roles: INSPECTION_READERS,
      params: inspectionParams,
      handler: async ({ params, ctx }) => {
        const found = await incomingInspection(db, params.sampleId);
        if (!found) throw problems.notFound(`incoming inspection of sample ${params.sampleId}`);
        ctx.body = found;
      },
    }),
  ];
}
