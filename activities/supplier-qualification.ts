import { ApplicationFailure, Context, log } from '@temporalio/activity';
import { ErpFailure } from '../common/erp-sync';
import { FailureType } from '../common/failures';
import type { Actor } from '../common/roles';
import type { ErpWriteState, SupplierDecision, SupplierQualificationStatus } from '../common/supplier-qualification';
import { appendAudit } from '../db/audit';
import { deadLetter } from '../db/erp-sync';
import type { ActivityDeps } from './deps';
import { alertErpAuthRefused, resolveErp } from './erp-sync';
import { activityKey } from './keys';

type Verdict = Exclude<SupplierQualificationStatus, 'pending'>;

export function supplierQualificationActivities(deps: ActivityDeps) {
  const { db } = deps;

  async function setErpState(
    p: { supplier: string; seq: number; status: Verdict; workflowId: string },
    erpState: ErpWriteState,
    detail: string,
  ) {
    await db.transaction(async (trx) => {
      // Only the decision still in force is projected; an older write finishing late does not overwrite a newer one.
      await trx('supplier_qualifications')
        .where({ supplier: p.supplier, status: p.status })
        .update({ erp_state: erpState, erp_detail: detail, updated_at: trx.fn.now() });
      await appendAudit(trx, {
        actor: 'system:supplier-qualification',
        action: `supplier.erp_status_${erpState}`,
        entityType: 'supplier',
        entityId: p.supplier,
        details: { seq: p.seq, status: p.status, workflowId: p.workflowId, detail },
        idempotencyKey: activityKey(),
      });
    });
  }

  return {
    /** Each known supplier's qualification as recorded (pending when never decided); unknown suppliers are left out. */
    async supplierQualificationStatuses(p: { suppliers: string[] }): Promise<{ supplier: string; status: SupplierQualificationStatus }[]> {
      const rows: { supplier: string; status: SupplierQualificationStatus | null }[] = await db('erp_suppliers as s')
        .leftJoin('supplier_qualifications as q', 'q.supplier', 's.name')
        .whereIn('s.name', p.suppliers)
        .whereNull('s.deleted_at')
        .select('s.name as supplier', 'q.status');
      return rows.map((r) => ({ supplier: r.supplier, status: r.status ?? 'pending' }));
    },

    async recordSupplierDecision(p: {
      workflowId: string;
      supplier: string;
      seq: number;
      decision: SupplierDecision;
      status: Verdict;
      actor: Actor;
      reason: string;
      at: string;
      via?: string;
    }) {
      await db.transaction(async (trx) => {
        const known = await trx('erp_suppliers').where({ name: p.supplier }).first('name');
        if (!known)
          throw ApplicationFailure.create({
            type: FailureType.NotFound,
            message: `supplier ${p.supplier} is not known`,
            nonRetryable: true,
          });
        await trx('supplier_qualifications')
          .insert({
            supplier: p.supplier,
            status: p.status,
            workflow_id: p.workflowId,
            decided_by: p.actor.username,
            decided_at: p.at,
            reason: p.reason,
            erp_state: 'pending',
            erp_detail: null,
          })
          .onConflict('supplier')
          .merge();
        await appendAudit(trx, {
          actorId: p.actor.userId,
          actor: p.actor.username,
          action: `supplier.${p.status}`,
          entityType: 'supplier',
          entityId: p.supplier,
          details: {
            seq: p.seq,
            decision: p.decision,
            reason: p.reason,
            workflowId: p.workflowId,
            printedName: p.actor.printedName,
            ...(p.via ? { via: p.via } : {}),
          },
          idempotencyKey: activityKey(),
        });
      });
    },

    /**
     * Writes the supplier's hold status to the ERP. The ERP record of the decision is created under labflow's key,
     * looked up first when an earlier attempt's outcome is unknown; a refusal becomes an outbound dead letter.
     */
    async pushSupplierStatus(p: { workflowId: string; supplier: string; seq: number; status: Verdict; eventKey: string; note: string }) {
      const adapter = resolveErp(deps).adapter;
      if (!adapter) {
        await setErpState(p, 'skipped', 'no ERP is configured');
        return { erp: 'skipped' as const, detail: 'no ERP is configured' };
      }
      const attempt = Context.current().info.attempt;
      try {
        const result = await adapter.writeSupplierStatus({
          supplier: p.supplier,
          status: p.status,
          eventKey: p.eventKey,
          note: p.note,
          outcomeUnknown: attempt > 1,
        });
        const detail = `verdict ${result.created}, hold ${result.hold} (modified ${result.modified}${result.conflicts ? `, ${result.conflicts} conflict(s)` : ''})`;
        await setErpState(p, 'written', detail);
        await db('erp_dead_letters')
          .where({ direction: 'outbound', entity: 'supplier_status', erp_name: p.supplier })
          .whereIn('state', ['open', 'retry_requested'])
          .update({ state: 'resolved', closed_at: db.fn.now(), closed_by: 'system:supplier-qualification', close_reason: 'written' });
        return { erp: 'written' as const, detail };
      } catch (err) {
        // A refused write, or a refused API key, waits in the dead letters for an operator's retry; retrying it here
        // cannot succeed. A refused key also alerts IT operators and admins (once per decision).
        if (!(err instanceof ApplicationFailure && (err.type === ErpFailure.Refused || err.type === ErpFailure.Auth))) throw err;
        log.warn('ERP refused the supplier status', { supplier: p.supplier, reason: err.message });
        await deadLetter(db, {
          direction: 'outbound',
          entity: 'supplier_status',
          syncRunId: null,
          refused: [{ name: p.supplier, modified: '', reason: err.message, errorType: err.type, payload: { ...p } }],
        });
        await setErpState(p, 'refused', err.message);
        const outboxIds =
          err.type === ErpFailure.Auth
            ? await db.transaction((trx) =>
                alertErpAuthRefused(trx, deps, {
                  key: `erp-auth-refused:${p.eventKey}`,
                  what: `Writing the hold status of supplier ${p.supplier} (${p.status})`,
                  error: err.message,
                  link: `${deps.publicUrl}/api/v1/suppliers/${encodeURIComponent(p.supplier)}/qualification`,
                }),
              )
            : [];
        return { erp: 'refused' as const, detail: err.message, outboxIds };
      }
    },
  };
}
