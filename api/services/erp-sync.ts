import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { ErpEntity } from '../../common/erp-sync';
import { workflowIds } from '../../common/ids';
import type { Actor } from '../../common/roles';
import { retryErpWriteSignal } from '../../common/supplier-qualification';
import { getDeadLetter } from '../../db/erp-sync';
import { DEAD_LETTER_OPEN_STATES, markDeadLetterRetryRequested, runningSyncRunId, type DeadLetterRow } from '../../db/erp-operations';
import type { erpSyncWorkflow } from '../../workflows/erp-sync';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';

type Deps = Pick<ApiDeps, 'db' | 'temporal' | 'config'>;

export interface SyncStarted {
  status: 200 | 202;
  body: { workflowId: string; syncRunId: string | null; runId?: string; state: 'started' | 'already_running' };
}

/** Starts erp-sync:<scope>, or answers with the run already going (a repeated trigger is satisfied by it). */
export async function startSync(
  { db, temporal, config }: Deps,
  scope: 'all' | ErpEntity,
  mode: 'incremental' | 'reconcile',
  requestedBy: string,
): Promise<SyncStarted> {
  const workflowId = workflowIds.erpSync(scope);
  try {
    const handle = await temporal.workflow.start<typeof erpSyncWorkflow>('erpSyncWorkflow', {
      workflowId,
      taskQueue: config.taskQueue,
      args: [{ scope, mode, requestedBy }],
      workflowIdConflictPolicy: 'FAIL',
    });
    return { status: 202, body: { workflowId, syncRunId: handle.firstExecutionRunId, state: 'started' } };
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    // The sync run's ID is the first run of the chain (it continues as new), whatever its record says: the record
    // is written by the run's first activity and closed by its last, a moment before the run itself closes.
    const description = await temporal.workflow.getHandle(workflowId).describe();
    const syncRunId = description.raw.workflowExecutionInfo?.firstRunId || (await runningSyncRunId(db, workflowId));
    return { status: 200, body: { workflowId, syncRunId, runId: description.runId, state: 'already_running' } };
  }
}

/**
 * Retries a dead letter: an outbound one (a supplier status the ERP refused) by signalling its qualification run to
 * write again, an inbound one by a sync of its entity.
 */
export async function retryDeadLetter(deps: Deps, actor: Actor, id: string) {
  const letter = (await getDeadLetter(deps.db, id)) as DeadLetterRow | undefined;
  if (!letter) throw problems.notFound(`dead letter ${id}`);
  if (!DEAD_LETTER_OPEN_STATES.includes(letter.state)) throw problems.conflict('dead-letter-closed', `the dead letter is ${letter.state}`);
  await markDeadLetterRetryRequested(deps.db, actor, letter);
  if (letter.direction === 'outbound') {
    const workflowId = workflowIds.supplierQualification(letter.erp_name);
    await deps.temporal.workflow.getHandle(workflowId).signal(retryErpWriteSignal);
    return { id: letter.id, state: 'retry_requested', workflowId };
  }
  const answer = await startSync(deps, letter.entity, 'incremental', actor.username);
  return { id: letter.id, state: 'retry_requested', sync: answer.body };
}
