import { getExternalWorkflowHandle, log, patched } from '@temporalio/workflow';
import { CAPA_STAGES, type CapaState, type CloseArgs, type ReasonArgs } from '../../../common/capa';
import { workflowIds } from '../../../common/ids';
import { processDecisionSignal, type SupplierDecision } from '../../../common/supplier-qualification';
import { startOrJoinChild } from '../../lib/children';
import { db } from '../../lib/proxies';
import { iso } from '../../lib/time';
import type { supplierQualificationWorkflow } from '../../supplier-qualification';
import { actionRow, type CapaCase } from '../capa-case';
import { grantProof } from '../proof';
import { QA, openActions } from '../tasks';
import { supplierSources } from '../validators';

/** QA closes the CAPA with a signature over the closure record, and may pass a verdict on its suppliers. */
export async function close(c: CapaCase, args: CloseArgs): Promise<CapaState> {
  const s = c.state;
  const { actor, signature, comment, supplierAction } = args;
  // The validator refused a closure without a signature.
  if (!signature) return s;
  // The verdict goes to the suppliers QA signed it for; closures from before verdicts named them meant every one.
  const suppliers = supplierAction ? (args.suppliers ?? supplierSources(s)) : [];
  const via = verdictVia(c);
  await c.change(
    () => {
      s.closure = {
        username: actor.username,
        printedName: actor.printedName,
        meaning: signature.meaning,
        signedAt: signature.signedAt,
        contentHash: signature.contentHash,
        comment: comment ?? '',
        ...(supplierAction ? { supplierAction } : {}),
        ...(supplierAction && args.suppliers ? { suppliers } : {}),
      };
      c.closeNow('effective');
    },
    (round) => ({
      audit: {
        action: 'capa.closed',
        actor,
        details: {
          outcome: 'effective',
          comment: comment ?? null,
          // `via` names the closure to the suppliers' runs, which believe a verdict only if this event bears it out.
          ...(supplierAction ? { supplierAction, suppliers, ...(c.grants ? { via } : {}) } : {}),
        },
      },
      signature: { round, stage: 'closed', stageIndex: CAPA_STAGES.indexOf('closed'), actor, signature },
      notify: [{ to: [...(s.owner ? [s.owner] : []), c.initiator], kind: 'capa.closed', outcome: 'effective', atTriage: false }],
    }),
    actor.userId,
    grantProof('capa.close', args, { roles: ['qa_manager'] }, signature),
  );
  // Runs closed before verdicts were delivered from here replay without the delivery.
  if (supplierAction && patched('capa-supplier-action')) await decideOnSuppliers(c, supplierAction, suppliers, via, args);
  return s;
}

/** The closure a verdict comes from, as the suppliers' runs and the audit event name it. */
const verdictVia = (c: CapaCase) => `capa:${c.state.number}:closure:${c.state.reopenings.length + 1}`;

/**
 * QA's verdict on the suppliers this CAPA names goes to each one's qualification run (started if it has none),
 * which records it and writes the supplier's hold status to the ERP, as when QA decides there directly.
 */
async function decideOnSuppliers(
  c: CapaCase,
  decision: SupplierDecision,
  suppliers: string[],
  via: string,
  args: CloseArgs,
): Promise<void> {
  const s = c.state;
  const reason = `CAPA ${s.number} "${s.title}" closed${args.comment ? `: ${args.comment}` : ''}`;
  for (const { supplier, status } of await db.supplierQualificationStatuses({ suppliers })) {
    if (status === 'disqualified') continue;
    const qualification = workflowIds.supplierQualification(supplier);
    try {
      await startOrJoinChild<typeof supplierQualificationWorkflow>('supplierQualificationWorkflow', {
        workflowId: qualification,
        args: [{ supplier, status }],
        workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
      });
      await getExternalWorkflowHandle(qualification).signal(processDecisionSignal, { decision, actor: args.actor, reason, via });
    } catch (err) {
      // The closure stands (the API checked each supplier could take the verdict); a run that ended meanwhile is logged.
      log.warn('supplier verdict not delivered', { supplier, decision, error: String(err) });
    }
  }
}

/** QA cancels an open CAPA: its tasks are cancelled and its open actions superseded. */
export function cancel(c: CapaCase, args: ReasonArgs): Promise<CapaState> {
  const s = c.state;
  const { actor, reason } = args;
  return c.change(
    () => {
      s.cancellation = { by: actor.username, reason, at: iso(Date.now()) };
      s.stage = 'cancelled';
      s.deadline = null;
      s.effectivenessDueAt = null;
    },
    () => ({
      audit: { action: 'capa.cancelled', actor, details: { reason } },
      closeTasks: [{ prefix: `${c.workflowId}:`, state: 'cancelled' }],
      actions: openActions(s).map((x) => ({ ...actionRow(x, s.round), state: 'superseded' as const })),
      notify: s.owner ? [{ to: [s.owner], kind: 'capa.cancelled', reason }] : [],
    }),
    undefined,
    grantProof('capa.cancel', args, { roles: ['qa_manager'] }),
  );
}

/** An operator cancelled the run itself: the record is left consistent (cancelled, tasks closed) before it ends. */
export async function cancelByOperator(c: CapaCase): Promise<void> {
  const s = c.state;
  const reason = 'the run was cancelled by an administrator';
  await c.change(
    () => {
      s.cancellation = { by: 'system:operator', reason, at: iso(Date.now()) };
      s.stage = 'cancelled';
      s.deadline = null;
    },
    () => ({
      audit: { action: 'capa.cancelled', details: { reason } },
      closeTasks: [{ prefix: `${c.workflowId}:`, state: 'cancelled' }],
    }),
  );
}

/**
 * QA reopens a closed CAPA within its reopen window: one closed as effective goes back to investigation in a new
 * round, one closed at triage (unfounded, merged) goes back to triage.
 */
export function reopen(c: CapaCase, args: ReasonArgs): Promise<CapaState> {
  const s = c.state;
  const { actor, reason } = args;
  const previousClosedAt = s.closedAt;
  return c.change(
    () => {
      s.reopenings.push({ by: actor.username, reason, at: iso(Date.now()), closedAt: s.closedAt });
      const toTriage = s.outcome !== 'effective';
      s.closedAt = null;
      s.closure = null;
      s.outcome = null;
      s.reopenUntil = null;
      s.effectivenessDueAt = null;
      c.startNewRound('reopened');
      if (toTriage) {
        s.triageDecision = null;
        s.stage = 'triage';
      } else {
        s.stage = 'investigation';
        c.setDeadline('investigation');
      }
    },
    () => ({
      audit: { action: 'capa.reopened', actor, details: { reason, previousClosedAt } },
      notify: [{ to: [s.owner ?? QA], kind: 'capa.reopened', reason }],
    }),
    actor.userId,
    grantProof('capa.reopen', args, { roles: ['qa_manager'] }),
  );
}
