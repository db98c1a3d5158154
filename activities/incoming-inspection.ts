import { log } from '@temporalio/activity';
import { workflowIds } from '../common/ids';
import { DEFAULT_INTAKE_TIMERS, type SampleIntakeInput } from '../common/sample-intake';
import { appendAudit } from '../db/audit';
import { criteriaOf, registerSamples, sampleTypes, type RegisteredSample } from '../db/sample-intake';
import type { ActivityDeps } from './deps';
import { activityKey } from './keys';

/** The sample type of a retained sample of a received lot (seeded with its tests by the erp_integration migration). */
export const INCOMING_SAMPLE_TYPE = 'INCOMING';
/** Samples registered from the ERP carry this source and `<receipt>:<line idx>` as their external ID. */
const SOURCE = 'erp';
const ACTOR = 'system:erp-sync';

export interface InspectionSample {
  purchaseReceipt: string;
  idx: number;
  input: SampleIntakeInput;
}

/**
 * Incoming inspection as sample intake: each received line of an item that needs inspection (a pending
 * incoming_inspection_hooks row) becomes a sample of type INCOMING with its own sample-intake run.
 */
export function incomingInspectionActivities({ db }: ActivityDeps) {
  return {
    /**
     * Registers a sample for up to `limit` pending hooks (those registered by an earlier attempt keep theirs) and
     * returns the input of each one's run. The hooks stay pending until their runs have started.
     */
    async registerInspectionSamples(p: { syncRunId: string; limit: number }): Promise<InspectionSample[]> {
      return db.transaction(async (trx) => {
        const type = (await sampleTypes(trx)).get(INCOMING_SAMPLE_TYPE);
        if (!type) {
          log.warn('no active INCOMING sample type: incoming inspection hooks stay pending');
          return [];
        }
        const hooks: { purchase_receipt: string; idx: number; sample_id: string | null }[] = await trx('incoming_inspection_hooks')
          .where({ state: 'pending' })
          .orderBy([{ column: 'created_at' }, { column: 'purchase_receipt' }, { column: 'idx' }])
          .limit(p.limit)
          .forNoKeyUpdate()
          .skipLocked()
          .select('purchase_receipt', 'idx', 'sample_id');
        if (!hooks.length) return [];
        const externalId = (h: { purchase_receipt: string; idx: number }) => `${h.purchase_receipt}:${h.idx}`;
        const unlinked = hooks.filter((h) => !h.sample_id);
        if (unlinked.length) {
          const existing = new Map<string, string>(
            (
              await trx('samples').where({ source: SOURCE }).whereIn('external_id', unlinked.map(externalId)).select('id', 'external_id')
            ).map((s: { id: string; external_id: string }) => [s.external_id, s.id]),
          );
          const tests: string[] = await trx('test_codes').where({ sample_type: INCOMING_SAMPLE_TYPE }).orderBy('code').pluck('code');
          const registered = await registerSamples(
            trx,
            unlinked
              .filter((h) => !existing.has(externalId(h)))
              .map((h) => ({
                sampleType: INCOMING_SAMPLE_TYPE,
                priority: 'routine' as const,
                requestedTests: tests,
                externalId: externalId(h),
              })),
            { source: SOURCE, submitterId: null, actor: ACTOR, actorId: null, workflowIdOf: workflowIds.sampleIntake },
          );
          for (const s of registered) existing.set(s.external_id!, s.id);
          for (const h of unlinked) {
            h.sample_id = existing.get(externalId(h))!;
            await trx('incoming_inspection_hooks')
              .where({ purchase_receipt: h.purchase_receipt, idx: h.idx })
              .update({ sample_id: h.sample_id });
          }
        }
        const rows: Pick<RegisteredSample, 'id' | 'accession' | 'priority' | 'requested_tests' | 'registered_at'>[] = await trx('samples')
          .whereIn(
            'id',
            hooks.map((h) => h.sample_id!),
          )
          .select('id', 'accession', 'priority', 'requested_tests', 'registered_at');
        const samples = new Map(rows.map((s) => [s.id, s]));
        return hooks.map((h) => {
          const s = samples.get(h.sample_id!)!;
          return {
            purchaseReceipt: h.purchase_receipt,
            idx: h.idx,
            input: {
              sampleId: s.id,
              accession: s.accession,
              sampleType: INCOMING_SAMPLE_TYPE,
              priority: s.priority,
              requestedTests: s.requested_tests,
              hasOrder: true,
              collectedAt: null,
              registeredAt: new Date(s.registered_at).toISOString(),
              criteria: criteriaOf(type),
              timers: DEFAULT_INTAKE_TIMERS,
              // Rejections, recollection requests and overdue notices about received goods go to QA.
              submitter: { kind: 'role', role: 'qa_manager' },
            },
          };
        });
      });
    },

    /** The hooks whose runs have started are consumed; the sync run counts them. */
    async markInspectionSamplesStarted(p: { syncRunId: string; samples: { purchaseReceipt: string; idx: number; accession: string }[] }) {
      if (!p.samples.length) return { started: 0 };
      return db.transaction(async (trx) => {
        const updated = await trx.raw(
          `update incoming_inspection_hooks h set state = 'started', intake_workflow_id = x.workflow_id
             from unnest(?::text[], ?::int[], ?::text[]) as x(purchase_receipt, idx, workflow_id)
            where h.purchase_receipt = x.purchase_receipt and h.idx = x.idx and h.state = 'pending'`,
          [
            p.samples.map((s) => s.purchaseReceipt),
            p.samples.map((s) => s.idx),
            p.samples.map((s) => workflowIds.sampleIntake(s.accession)),
          ],
        );
        const started: number = updated.rowCount ?? 0;
        if (started) {
          await trx.raw(
            `update erp_sync_runs set counts = counts || jsonb_build_object('purchase_receipts',
               coalesce(counts->'purchase_receipts', '{}') || jsonb_build_object('inspectionSamples',
                 coalesce((counts->'purchase_receipts'->>'inspectionSamples')::int, 0) + ?))
             where id = ?`,
            [started, p.syncRunId],
          );
          await appendAudit(trx, {
            actor: ACTOR,
            action: 'erp.inspection_samples_started',
            entityType: 'erp_sync',
            entityId: 'purchase_receipts',
            details: {
              syncRunId: p.syncRunId,
              samples: p.samples.map((s) => ({ receipt: s.purchaseReceipt, idx: s.idx, accession: s.accession })),
            },
            idempotencyKey: activityKey(),
          });
        }
        return { started };
      });
    },
  };
}
