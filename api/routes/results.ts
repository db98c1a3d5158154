import { ApplicationFailure } from '@temporalio/common';
import { WorkflowUpdateFailedError, type UpdateDefinition } from '@temporalio/client';
import type { z } from 'zod';
import { FailureType } from '../../common/failures';
import {
  boundAnalysisArgs,
  cancelAnalysisUpdate,
  enterResultUpdate,
  rejectResultUpdate,
  releaseResultUpdate,
  retestAnalysisUpdate,
  retractResultUpdate,
  submitResultUpdate,
  verifyResultUpdate,
  type AnalysisAction,
  type AnalysisState,
} from '../../common/results';
import type { Actor, Role } from '../../common/roles';
import type { SignatureInput } from '../../common/signatures';
import type { ApiDeps } from '../deps';
import { Problem, problems } from '../problem';
import { route, type RouteSpec } from '../route';
import {
  analysisAnswer,
  analysisListAnswer,
  analysisListParams,
  analysisParams,
  analysisReasonBody,
  emptyBody,
  resultBody,
  signedBody,
} from '../schemas/results';
import { loadSample } from '../services/sample-intake';
import { isLabStaff, requireAnalysisAccess } from '../services/result-access';
import {
  analysesOf,
  analysisAsSeen,
  analysisNotFound,
  analysisRun,
  analysisView,
  dropUnappliedEntry,
  entryColumns,
  findAnalysis,
  loadAnalysis,
  recordRefusedVerification,
  writeEntry,
  type AnalysisRow,
} from '../services/results';
import { grantAction, verifySigner } from '../signing';
import { RESULT_VERIFICATION } from '../../db/gate';
import { requireGate } from '../services/training';
import { phiAccessLog } from '../patient-access';

const LAB = ['lab_technician', 'lab_director'] as const;
const TAG = 'results';
const READERS =
  "Lab roles (lab_technician, lab_director), the clinician who submitted the sample and the sample's current ordering provider (the same view as the submitter's); a replaced ordering provider does not; admin does not pass. Every read and refusal is a PHI access event.";
type Params = z.infer<typeof analysisParams>;

/** The rule a refused verification names (the refusal's message starts with it). */
const ruleOf = (message: string) => message.split(':')[0];

export function resultRoutes(deps: ApiDeps): RouteSpec[] {
  const { db } = deps;
  const phi = phiAccessLog(deps);

  /** Re-authenticates a signer for the value they saw: a stale content hash (the value changed since) is 409. */
  async function signed(actor: Actor, row: AnalysisRow, body: z.infer<typeof signedBody>, meaning: string): Promise<SignatureInput> {
    if (body.signature.meaning !== meaning) {
      throw problems.unprocessable('wrong-signature-meaning', `this signature means "${meaning}", not "${body.signature.meaning}"`);
    }
    const { contentHash } = await analysisView(db, row);
    if (body.signature.contentHash !== contentHash) {
      throw problems.conflict('stale-content-hash', 'the result changed since it was read; read it again and sign what it now shows');
    }
    return verifySigner(deps, actor, body.signature, { entityType: 'analysis', entityId: row.workflow_id });
  }

  /**
   * One person's action on a test's current analysis: a closed or retested analysis is 409; the API writes the
   * single-use grant the recording step consumes and sends the run the request with its ID; the Update's validator
   * judges it; the answer is the analysis as the API shows it. A refused verification is kept in the audit trail.
   */
  function analysisAction<B, A extends object>(spec: {
    name: string;
    summary: string;
    roles: readonly Role[];
    body: z.ZodType<B>;
    update: UpdateDefinition<AnalysisState, [A & { actor: Actor; grant: string }]>;
    action: AnalysisAction;
    /** Refusals beyond the derived ones: 409 (state), 422 (the value, the signature's meaning), 423 (signing locked). */
    problems: readonly number[];
    toArgs: (row: AnalysisRow, body: B, actor: Actor) => Promise<A & { signature?: SignatureInput }>;
    /** Undoes what toArgs wrote when the run refuses the action. */
    undo?: (args: A) => Promise<void>;
  }): RouteSpec {
    return route<Params, Record<string, never>, B>({
      method: 'post',
      path: `/samples/:accession/analyses/:test/${spec.name}`,
      summary: spec.summary,
      tag: TAG,
      roles: spec.roles,
      params: analysisParams,
      body: spec.body,
      response: analysisAnswer,
      problems: spec.problems,
      handler: async ({ params, body, actor, ctx }) => {
        const row = await loadAnalysis(db, params.accession, params.test);
        const run = analysisRun(deps, row);
        const args = await spec.toArgs(row, body, actor);
        try {
          const grant = await grantAction(deps, actor, {
            workflowId: row.workflow_id,
            action: spec.action,
            args: boundAnalysisArgs(spec.action, args),
            signature: args.signature,
          });
          await run.executeUpdate(spec.update, { args: [{ ...args, actor, grant }] });
        } catch (err) {
          await spec.undo?.(args);
          const cause = err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure ? err.cause : null;
          if (cause?.type === FailureType.VerificationRefused) {
            const rule = ruleOf(cause.message);
            await recordRefusedVerification(db, row, actor, rule);
            throw new Problem(403, 'verification-refused', 'The verification was refused', cause.message, { rule });
          }
          throw err;
        }
        ctx.body = await analysisView(db, await loadAnalysis(db, params.accession, params.test));
      },
    });
  }

  const reasonAction = (name: string, summary: string, update: typeof retractResultUpdate, action: AnalysisAction) =>
    analysisAction({
      name,
      summary,
      roles: LAB,
      body: analysisReasonBody,
      update,
      action,
      problems: [409, 422],
      toArgs: async (_row, body) => ({ reason: body.reason }),
    });

  return [
    route<z.infer<typeof analysisListParams>>({
      method: 'get',
      path: '/samples/:accession/analyses',
      summary: "A sample's analyses: each routed test's state, result, flag, reference range, verifications and retests",
      tag: TAG,
      roles: 'any',
      access: READERS,
      params: analysisListParams,
      response: analysisListAnswer,
      handler: async ({ params, actor, ctx }) => {
        const sample = await loadSample(db, params.accession);
        // Who may read first: a refused read names the analyses without assembling them.
        const patientIds = await requireAnalysisAccess(deps, sample, actor, ctx, {
          kind: 'analysis_list',
          recordIds: () => db('analyses').where({ accession: params.accession }).orderBy(['test_code', 'retest_number']).pluck('workflow_id'),
        });
        const seen = (await analysesOf(db, params.accession)).map((view) => analysisAsSeen(view, isLabStaff(actor)));
        await phi.read(ctx, actor, { kind: 'analysis_list', patientIds, recordIds: [...new Set(seen.flatMap((s) => s.recordIds))] });
        ctx.body = { items: seen.map((s) => s.view) };
      },
    }),
    route<Params>({
      method: 'get',
      path: '/samples/:accession/analyses/:test',
      summary: "A test's current analysis on a sample (its newest retest)",
      tag: TAG,
      roles: 'any',
      access: READERS,
      params: analysisParams,
      response: analysisAnswer,
      handler: async ({ params, actor, ctx }) => {
        const sample = await loadSample(db, params.accession);
        // Who may read comes before whether the test was ordered: a 404 would tell anyone which tests a sample has.
        const found = await findAnalysis(db, params.accession, params.test);
        const patientIds = await requireAnalysisAccess(deps, sample, actor, ctx, { kind: 'analysis', recordIds: async () => (found ? [found.workflow_id] : []) });
        if (!found) throw analysisNotFound(params.accession, params.test);
        const { view, recordIds } = analysisAsSeen(await analysisView(db, found), isLabStaff(actor));
        await phi.read(ctx, actor, { kind: 'analysis', patientIds, recordIds });
        ctx.body = view;
      },
    }),
    analysisAction({
      name: 'result',
      summary: 'Enter (or, before submission, edit) the result: numeric with its unit, a code, or text',
      roles: LAB,
      body: resultBody,
      update: enterResultUpdate,
      action: 'analysis.enter',
      problems: [409, 422],
      toArgs: async (row, body, actor) => {
        const columns = await entryColumns(db, row.test_code, body);
        return { entryId: await writeEntry(db, row.id, actor, columns) };
      },
      undo: ({ entryId }) => dropUnappliedEntry(db, entryId),
    }),
    analysisAction({
      name: 'submit',
      summary: 'Submit the result for verification',
      roles: LAB,
      body: emptyBody,
      update: submitResultUpdate,
      action: 'analysis.submit',
      problems: [409, 422],
      toArgs: async () => ({}),
    }),
    analysisAction({
      name: 'verify',
      summary: "Verify the result with an electronic signature (meaning \"verification\"), as the test's policy allows",
      roles: LAB,
      body: signedBody,
      update: verifyResultUpdate,
      action: 'analysis.verify',
      problems: [409, 422, 423],
      toArgs: async (row, body, actor) => {
        await requireGate(deps, actor, { activity: RESULT_VERIFICATION, scope: row.test_code }, { entityType: 'analysis', entityId: row.workflow_id });
        return { signature: await signed(actor, row, body, 'verification') };
      },
    }),
    analysisAction({
      name: 'release',
      summary: 'Release a verified result (lab director, signature meaning "responsibility")',
      roles: ['lab_director'],
      body: signedBody,
      update: releaseResultUpdate,
      action: 'analysis.release',
      problems: [409, 422, 423],
      toArgs: async (row, body, actor) => ({ signature: await signed(actor, row, body, 'responsibility') }),
    }),
    reasonAction('retract', 'Retract a result with a reason (it stays on record, marked retracted)', retractResultUpdate, 'analysis.retract'),
    reasonAction('reject', 'Reject a submitted result with a reason', rejectResultUpdate, 'analysis.reject'),
    reasonAction('cancel', 'Cancel the test with a reason', cancelAnalysisUpdate, 'analysis.cancel'),
    analysisAction({
      name: 'retest',
      summary: 'Request a retest: this analysis freezes as it stands and a new one, linked to it, starts',
      roles: LAB,
      body: emptyBody,
      update: retestAnalysisUpdate,
      action: 'analysis.retest',
      problems: [409, 422],
      toArgs: async () => ({}),
    }),
  ];
}
