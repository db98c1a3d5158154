import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type { Knex } from 'knex';
import { ErpFailure } from '../common/erp-sync';
import { FailureType } from '../common/failures';
import type { Actor } from '../common/roles';
import {
  SUPPLIER_ACTIONS,
  supplierGrantedArgs,
  type ErpWriteState,
  type SupplierDecision,
  type SupplierQualificationStatus,
} from '../common/supplier-qualification';
import { appendAudit } from '../db/audit';
import { deadLetter } from '../db/erp-sync';
import type { ActivityDeps } from './deps';
import { alertErpAuthRefused, resolveErp } from './erp-sync';
import { activityKey } from './keys';
import { asActor, grantChecks, Refusal, type RecordRef } from './lib/grant-checks';

type Verdict = Exclude<SupplierQualificationStatus, 'pending'>;

const VIA = /^capa:(CAPA-\d{4}-\d+):closure:\d+$/;

/**
 * The signer of the CAPA closure a decision signal names, if Postgres holds that closure: its audit event carries
 * this verdict on this supplier under this `via`, with a signature row of the closing QA manager. Else null.
 */
async function closureSigner(trx: Knex.Transaction, p: { supplier: string; decision: SupplierDecision; via: string }) {
  const match = VIA.exec(p.via);
  if (!match) return null;
  const number = match[1];
  const closed = await trx('audit_events')
    .where({ entity_type: 'capa', entity_id: number, action: 'capa.closed' })
    .whereRaw(`details->>'via' = ?`, [p.via])
    .whereRaw(`details->>'supplierAction' = ?`, [p.decision])
    .whereRaw(`jsonb_exists(details->'suppliers', ?)`, [p.supplier])
    .first('actor_id', trx.raw(`details->'signature'->>'id' as signature_id`));
  if (!closed?.actor_id || !closed.signature_id) return null;
  const signature = await trx('signatures')
    .where({ id: closed.signature_id, workflow_id: `capa:${number}`, user_id: closed.actor_id, stage_name: 'closed' })
    .first('id');
  if (!signature) return null;
  const user = await trx('users').where({ id: closed.actor_id }).first('id', 'username', 'printed_name', 'roles', 'active');
  return user ?? null;
}

export function supplierQualificationActivities(deps: ActivityDeps) {
  const { db } = deps;
  const checks = grantChecks(deps);
  const refOf = (p: { workflowId: string; supplier: string }): RecordRef => ({
    workflowId: p.workflowId,
    entityType: 'supplier',
    entityId: p.supplier,
    label: `supplier ${p.supplier}`,
    link: `${deps.publicUrl}/api/v1/suppliers/${encodeURIComponent(p.supplier)}/qualification`,
  });
  const mayDecide = (user: { roles: readonly string[] }) => user.roles.includes('qa_manager') || user.roles.includes('admin');

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
      /** A decision of QA's sent through the API: its grant. */
      grant?: string;
      /** A decision taken in another process (a CAPA closure): believed only if Postgres holds it. */
      via?: string;
    }) {
      const action = p.grant || !p.via ? SUPPLIER_ACTIONS[p.decision] : 'supplier.process_decision';
      await checks.recording(refOf(p), action, async (trx) => {
        let actor;
        if (p.grant || !p.via) {
          const claim = { grantId: p.grant, action: SUPPLIER_ACTIONS[p.decision], actor: p.actor, args: supplierGrantedArgs(p) };
          actor = await checks.granted(trx, p, claim, mayDecide);
        } else {
          const signer = await closureSigner(trx, { supplier: p.supplier, decision: p.decision, via: p.via });
          if (!signer || !signer.active || !mayDecide(signer)) throw new Refusal('not_from_labflow', p.actor?.userId ?? null);
          actor = asActor(signer);
        }
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
            decided_by: actor.username,
            decided_at: p.at,
            reason: p.reason,
            erp_state: 'pending',
            erp_detail: null,
          })
          .onConflict('supplier')
          .merge();
        await appendAudit(trx, {
          actorId: actor.userId,
          actor: actor.username,
          action: `supplier.${p.status}`,
          entityType: 'supplier',
          entityId: p.supplier,
          details: {
            seq: p.seq,
            decision: p.decision,
            reason: p.reason,
            workflowId: p.workflowId,
            printedName: actor.printedName,
            ...(p.via ? { via: p.via } : {}),
            ...(p.grant ? { grant: p.grant } : {}),
          },
          idempotencyKey: activityKey(),
        });
      });
    },

    /**
     * Believes an operator's retry signal only if Postgres shows a retry was asked for: the supplier's outbound dead
     * letter is marked retry_requested (the API marks it before it signals). Refused otherwise, like a forged action.
     */
    async confirmErpRetry(p: { workflowId: string; supplier: string; seq: number }): Promise<void> {
      await checks.recording(refOf(p), 'supplier.retry_erp_write', async (trx) => {
        const asked = await trx('erp_dead_letters')
          .where({ direction: 'outbound', entity: 'supplier_status', erp_name: p.supplier, state: 'retry_requested' })
          .first('id');
        if (!asked) throw new Refusal('not_from_labflow', null);
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
