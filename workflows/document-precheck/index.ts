import { proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import { precheckStateQuery, type DocumentPrecheckInput, type DocumentPrecheckState } from '../../common/document-precheck';

/**
 * One step that asks the provider chain (each provider retried as the error table says, inside the step) and falls
 * back to keyword rules; its own retries cover a worker or database gone mid-step. The client timeouts bound the
 * calls: a chain of three providers tried twice each fits well inside the step's timeout.
 */
const acts = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 5, nonRetryableErrorTypes: ['NotFound', 'NoChecklist'] },
});

/**
 * The advisory compliance pre-check of a submitted document version, started (and abandoned) by its approval run.
 * It stores findings for reviewers and never touches the version's state, its review or its signatures; the
 * approval run neither waits for it nor learns how it ended. IDs in, counts out: the text never enters history.
 */
export async function documentPrecheckWorkflow(input: DocumentPrecheckInput): Promise<DocumentPrecheckState> {
  const state: DocumentPrecheckState = { versionId: input.versionId, stage: 'running', source: null, findings: null };
  setHandler(precheckStateQuery, () => state);
  try {
    const { source, ...findings } = await acts.runDocumentPrecheck({ ...input, workflowId: workflowInfo().workflowId });
    Object.assign(state, { stage: 'done', source, findings });
    return state;
  } catch (err) {
    state.stage = 'failed';
    throw err;
  }
}
