import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/common';
import { workflowIds } from '../../common/ids';
import type { Actor } from '../../common/roles';
import { EntityId, EntityType, Stage } from '../../common/search-attributes';
import { supersedeSummarySignal, type Summarizer, type SummaryInput } from '../../common/soap-summary';
import { notesFingerprint } from '../../db/soap-notes';
import { openSummaryJobsOf, summaryJobStage } from '../../db/summaries';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import type { soapSummaryWorkflow } from '../../workflows';

type Deps = Pick<ApiDeps, 'db' | 'temporal'>;

// A job that ended without a summary to keep: asking again for the same notes starts it afresh.
const RESTARTABLE_STAGES = ['superseded', 'cancelled', 'rejected', 'failed_all_providers'];

/**
 * Starts the summary of a patient's notes as they are now, or finds the job that already summarizes exactly these
 * notes. A new job supersedes the patient's other open jobs (their notes are older).
 */
export async function requestSummary(
  deps: Pick<ApiDeps, 'db' | 'temporal' | 'config'>,
  patientId: string,
  actor: Actor,
  providers: Summarizer[] | undefined,
): Promise<{ workflowId: string; created: boolean }> {
  const settings = deps.config.summary;
  const fingerprint = await notesFingerprint(deps.db, patientId);
  if (fingerprint.noteIds.length === 0) {
    throw problems.unprocessable('no-notes', 'the patient has no SOAP notes to summarize');
  }
  const workflowId = workflowIds.soapSummary(patientId, fingerprint.notesHash);
  const previousStage = await summaryJobStage(deps.db, workflowId);
  const input: SummaryInput = {
    patientId,
    notesHash: fingerprint.notesHash,
    requestedBy: { userId: actor.userId, username: actor.username },
    providers: summarizersFor(providers ?? settings.providers, settings.extractiveFallback),
    attempt: settings.attempt,
    ...(settings.timeouts ? { timeouts: settings.timeouts } : {}),
    maxRounds: settings.maxRounds,
  };
  let created = true;
  try {
    await deps.temporal.workflow.start<typeof soapSummaryWorkflow>('soapSummaryWorkflow', {
      workflowId,
      taskQueue: deps.config.taskQueue,
      args: [input],
      workflowIdConflictPolicy: 'FAIL',
      workflowIdReusePolicy:
        previousStage && RESTARTABLE_STAGES.includes(previousStage) ? 'ALLOW_DUPLICATE' : 'ALLOW_DUPLICATE_FAILED_ONLY',
      typedSearchAttributes: [
        { key: EntityType, value: 'soap-summary' },
        { key: EntityId, value: patientId },
        { key: Stage, value: 'requested' },
      ],
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    created = false;
  }
  if (created) await supersedeOpenJobs(deps, patientId, { except: workflowId, reason: 'new_request', by: workflowId });
  return { workflowId, created };
}

/** The requested (or configured) providers in order, then the extractive summarizer as the last resort. */
function summarizersFor(requested: Summarizer[], extractiveFallback: boolean): Summarizer[] {
  const llms = requested.filter((p) => p !== 'extractive');
  return extractiveFallback || requested.includes('extractive') ? [...llms, 'extractive'] : llms;
}

async function supersedeOpenJobs(
  deps: Deps,
  patientId: string,
  options: { except?: string; reason: 'notes_changed' | 'new_request'; by?: string },
): Promise<void> {
  const open = await openSummaryJobsOf(deps.db, patientId, options.except);
  await Promise.all(
    open.map((id) =>
      deps.temporal.workflow
        .getHandle(id)
        .signal(supersedeSummarySignal, { reason: options.reason, by: options.by })
        .catch((err: unknown) => {
          // A run that has just ended has nothing left to supersede.
          if (!(err instanceof WorkflowNotFoundError)) throw err;
        }),
    ),
  );
}

/** After a note changed: every open summary of the patient's older notes is superseded. */
export async function supersedeRunningSummaries(deps: Deps, patientId: string): Promise<void> {
  await supersedeOpenJobs(deps, patientId, { reason: 'notes_changed' });
}

/**
 * Before a patient's records are deleted: their open summary runs are terminated (their rows are about to go, so
 * there is nothing left for them to write). The reason names no patient data.
 */
export async function stopSummariesOfDeletedPatient(deps: Deps, patientId: string): Promise<void> {
  const open = await openSummaryJobsOf(deps.db, patientId);
  await Promise.all(
    open.map((id) =>
      deps.temporal.workflow
        .getHandle(id)
        .terminate('patient record deleted')
        .catch((err: unknown) => {
          if (!(err instanceof WorkflowNotFoundError)) throw err;
        }),
    ),
  );
}
