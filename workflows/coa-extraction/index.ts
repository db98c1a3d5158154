import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../../activities';
import {
  coaStateQuery,
  confirmCoaUpdate,
  rejectCoaUpdate,
  type CoaExtractionInput,
  type CoaExtractionState,
  type ConfirmCoaArgs,
  type RejectCoaArgs,
} from '../../common/coa-extraction';
import { FailureType, refuse } from '../../common/failures';
import { requireProof, undoneIfRefused } from '../lib/proof';
import { askProviders } from './providers';

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 5 },
});

/** Shape checks only: the recording activity checks the grant and the person's role as Postgres knows them. */
export function validateDecision(state: CoaExtractionState, deciding: boolean, args: ConfirmCoaArgs | RejectCoaArgs): void {
  requireProof(args);
  if (!args.actor.roles.includes('qa_manager')) refuse(FailureType.Forbidden, 'only quality (qa_manager) confirms or rejects a certificate’s fields');
  if (deciding) refuse(FailureType.DuplicateDecision, 'another decision is being recorded');
  if (state.stage !== 'proposed') refuse(FailureType.WrongStage, `the extraction is ${state.stage}, not awaiting confirmation`);
}

export function validateConfirm(state: CoaExtractionState, confirming: boolean, args: ConfirmCoaArgs): void {
  validateDecision(state, confirming, args);
  const f = args.fields as unknown as Record<string, unknown> | null;
  if (!f || typeof f !== 'object' || !Array.isArray(f.parameters)) refuse(FailureType.InvalidInput, 'the confirmed fields are incomplete');
}

/**
 * One certificate of analysis: its fields are proposed (provider chain, then rules) and checked against its text,
 * then the run waits for a quality person to confirm or correct them (only then are they recorded, on the
 * incoming inspection too) or to reject them (nothing recorded).
 */
export async function coaExtractionWorkflow(input: CoaExtractionInput): Promise<CoaExtractionState> {
  const state: CoaExtractionState = { extractionId: input.extractionId, stage: 'requested', source: null, confirmedBy: null };
  let deciding = false;
  const decided = () => state.stage === 'confirmed' || state.stage === 'rejected';
  setHandler(coaStateQuery, () => state);
  setHandler(
    confirmCoaUpdate,
    async (args) => {
      deciding = true;
      try {
        const done = await undoneIfRefused(
          () =>
            acts
              .recordCoaConfirmation({ workflowId: workflowInfo().workflowId, extractionId: input.extractionId, ...args })
              .catch((err: unknown) => {
                // Fields the certificate does not bear out: nothing was written, the caller hears why.
                if (
                  err instanceof ActivityFailure &&
                  err.cause instanceof ApplicationFailure &&
                  err.cause.type === FailureType.InvalidInput
                ) {
                  refuse(FailureType.InvalidInput, err.cause.message);
                }
                throw err;
              }),
          () => undefined,
        );
        state.stage = 'confirmed';
        state.confirmedBy = done.confirmedBy;
        return state;
      } finally {
        deciding = false;
      }
    },
    { validator: (args) => validateConfirm(state, deciding, args) },
  );
  setHandler(
    rejectCoaUpdate,
    async (args) => {
      deciding = true;
      try {
        await undoneIfRefused(
          () => acts.recordCoaRejection({ workflowId: workflowInfo().workflowId, extractionId: input.extractionId, ...args }),
          () => undefined,
        );
        state.stage = 'rejected';
        return state;
      } finally {
        deciding = false;
      }
    },
    { validator: (args) => validateDecision(state, deciding, args) },
  );
  // Each provider its own activity, retried per the error table, with a larger budget after a truncated answer.
  const proposed =
    input.providers && input.attempt && patched('coa-provider-attempts')
      ? await askProviders(input.extractionId, input.providers, input.attempt)
      : await acts.proposeCoaExtraction({ extractionId: input.extractionId });
  state.source = proposed.source;
  state.stage = 'proposed';
  await condition(decided);
  await condition(allHandlersFinished);
  return state;
}
