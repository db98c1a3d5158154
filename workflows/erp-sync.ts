import {
  ApplicationFailure,
  ActivityFailure,
  continueAsNew,
  log,
  patched,
  proxyActivities,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import type { Activities } from '../activities';
import type { InspectionSample } from '../activities/incoming-inspection';
import { entitiesOf, ErpFailure, type ErpSyncInput, type ErpSyncResult } from '../common/erp-sync';
import { sampleIntakeStartOptions } from '../common/sample-intake';
import { EntityId, EntityType, Stage } from '../common/search-attributes';
import { alerts, longRunning, startOrJoinChild } from './lib';
import type { sampleIntakeWorkflow } from './sample-intake';

const failureOf = (err: unknown) => (err instanceof ActivityFailure ? err.cause : err);
const failureMessage = (err: unknown) => {
  const cause = failureOf(err);
  return cause instanceof Error ? cause.message : String(cause);
};

const INSPECTION_BATCH = 50;

/** Starts the sample-intake run of an incoming-inspection sample; one that has started already counts as started. */
async function startInspectionRun({ input }: InspectionSample): Promise<void> {
  await startOrJoinChild<typeof sampleIntakeWorkflow>('sampleIntakeWorkflow', {
    ...sampleIntakeStartOptions(input.accession),
    args: [input],
  });
}

/**
 * One sync of the ERP into labflow (all entities in order, or one), incremental from each entity's cursor, or a
 * reconciliation that compares counts and hashes. Each activity stores pages that move the cursor; the run continues
 * as new between entities and every few activities, so its history stays small however much there is to sync.
 */
export async function erpSyncWorkflow(input: ErpSyncInput): Promise<ErpSyncResult> {
  const info = workflowInfo();
  const mode = input.mode ?? 'incremental';
  const entities = entitiesOf(input.scope);
  const syncRunId = input.resume?.syncRunId ?? info.firstExecutionRunId;
  // Every step pages the ERP or books what a page moved, heartbeating; a refused key or no ERP at all is final.
  const erp = proxyActivities<Activities>(
    longRunning((input.heartbeatTimeout ?? '2m') as Duration, {
      startToCloseTimeout: '30m',
      retry: {
        initialInterval: '1s',
        backoffCoefficient: 2,
        maximumInterval: '1m',
        nonRetryableErrorTypes: [ErpFailure.Auth, ErpFailure.NotConfigured],
      },
    }),
  );
  const stage = (value: string) =>
    upsertSearchAttributes([
      { key: EntityType, value: 'erp_sync' },
      { key: EntityId, value: input.scope },
      { key: Stage, value },
    ]);

  if (!input.resume) {
    const configured = await erp.beginErpSyncRun({
      syncRunId,
      workflowId: info.workflowId,
      scope: input.scope,
      mode,
      requestedBy: input.requestedBy ?? 'schedule',
    });
    if (!configured) {
      stage('skipped');
      return { syncRunId, scope: input.scope, mode, state: 'skipped', error: 'no ERP is configured (ERP_URL)' };
    }
  }
  let next: ErpSyncInput['resume'] | null = null;
  let activities = 0;
  try {
    entities: for (let entityIndex = input.resume?.entityIndex ?? 0; entityIndex < entities.length; entityIndex++) {
      const entity = entities[entityIndex];
      stage(`${mode}:${entity}`);
      if (mode === 'reconcile') {
        if (entity !== 'deletions') await erp.reconcileErpEntity({ syncRunId, entity, pageSize: input.pageSize });
        continue;
      }
      const midEntity = input.resume?.midEntity && input.resume.entityIndex === entityIndex;
      if (!midEntity) await erp.retryErpDeadLetters({ syncRunId, entity });
      for (;;) {
        const result = await erp.syncErpEntity({ syncRunId, entity, pageSize: input.pageSize, maxPages: input.pagesPerActivity ?? 20 });
        activities += 1;
        if (result.done) break;
        if (activities >= (input.activitiesPerRun ?? 50) || workflowInfo().continueAsNewSuggested) {
          next = { syncRunId, entityIndex, midEntity: true };
          break entities;
        }
      }
      if (entity === 'purchase_receipts' && patched('erp-inspection-samples')) {
        // Received goods that need incoming inspection become samples, each with its own sample-intake run.
        for (;;) {
          const samples = await erp.registerInspectionSamples({ syncRunId, limit: INSPECTION_BATCH });
          if (!samples.length) break;
          await Promise.all(samples.map(startInspectionRun));
          await erp.markInspectionSamplesStarted({
            syncRunId,
            samples: samples.map((x) => ({ purchaseReceipt: x.purchaseReceipt, idx: x.idx, accession: x.input.accession })),
          });
          activities += 2;
          if (samples.length < INSPECTION_BATCH) break;
          if (activities >= (input.activitiesPerRun ?? 50) || workflowInfo().continueAsNewSuggested) {
            next = { syncRunId, entityIndex, midEntity: true };
            break entities;
          }
        }
      }
      if (entityIndex + 1 < entities.length) {
        // A fresh history for every entity.
        next = { syncRunId, entityIndex: entityIndex + 1 };
        break;
      }
    }
  } catch (err) {
    const error = failureMessage(err);
    const cause = failureOf(err);
    stage('failed');
    const finished = await erp.finishErpSyncRun({
      syncRunId,
      scope: input.scope,
      state: 'failed',
      error,
      errorType: cause instanceof ApplicationFailure ? (cause.type ?? undefined) : undefined,
    });
    // A revoked token alerts IT operators and admins; a run finished by older code got no outbox back (undefined).
    if (finished?.outboxIds?.length) {
      await alerts
        .deliverEmails(finished.outboxIds)
        .catch((mailErr) => log.warn('ERP alert email not delivered', { error: String(mailErr) }));
    }
    throw ApplicationFailure.create({ type: 'ErpSyncFailed', message: error, nonRetryable: true });
  }
  if (next) return continueAsNew<typeof erpSyncWorkflow>({ ...input, resume: next });
  await erp.finishErpSyncRun({ syncRunId, state: 'completed' });
  stage('completed');
  return { syncRunId, scope: input.scope, mode, state: 'completed' };
}
