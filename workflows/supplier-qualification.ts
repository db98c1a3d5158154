import {
  allHandlersFinished,
  condition,
  continueAsNew,
  log,
  patched,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { FailureType, refuse } from '../common/failures';
import {
  DECISION_FROM,
  DECISION_STATUS,
  DECISION_UPDATES,
  processDecisionSignal,
  retryErpWriteSignal,
  supplierQualificationQuery,
  type SupplierDecision,
  type ProcessDecisionArgs,
  type SupplierDecisionArgs,
  type SupplierDecisionRecord,
  type SupplierQualificationInput,
  type SupplierQualificationState,
} from '../common/supplier-qualification';
import { EntityId, EntityType, Stage } from '../common/search-attributes';
import { alerts, db, erp, upgradesWithEachBuild } from './lib';
import { grantRefusal, isActor, requireProof } from './lib/proof';

upgradesWithEachBuild(supplierQualificationWorkflow);

/**
 * QA's qualification of one supplier: approve, suspend, disqualify (Updates, QA only), each recorded and written to
 * the ERP as the supplier's hold status, in order. Disqualification ends the run.
 */
export async function supplierQualificationWorkflow(input: SupplierQualificationInput): Promise<SupplierQualificationState> {
  const { workflowId } = workflowInfo();
  const s: SupplierQualificationState = input.resume ?? {
    workflowId,
    supplier: input.supplier,
    status: input.status ?? 'pending',
    decisions: [],
  };
  let retryRequested = false;
  const publish = () =>
    upsertSearchAttributes([
      { key: EntityType, value: 'supplier' },
      { key: EntityId, value: input.supplier },
      { key: Stage, value: s.status },
    ]);
  publish();

  setHandler(supplierQualificationQuery, () => s);
  setHandler(retryErpWriteSignal, () => {
    retryRequested = true;
  });

  /** Records a decision (state first, so a concurrent one is judged against it), undone if recording fails. */
  async function decide(
    decision: SupplierDecision,
    { actor, reason, grant }: { actor: SupplierDecisionArgs['actor']; reason: string; grant?: string },
    via?: string,
  ): Promise<SupplierQualificationState> {
    const status = DECISION_STATUS[decision];
    // Taken before any await, so a concurrent decision is judged against this one.
    const previous = s.status;
    const record: SupplierDecisionRecord = {
      seq: s.decisions.length + 1,
      decision,
      status,
      by: actor.username,
      at: new Date().toISOString(),
      reason,
      erp: 'pending',
      recorded: false,
      ...(via ? { via } : {}),
    };
    s.decisions.push(record);
    s.status = status;
    publish();
    try {
      await db.recordSupplierDecision({
        workflowId,
        supplier: input.supplier,
        seq: record.seq,
        decision,
        status,
        actor,
        reason,
        at: record.at,
        ...(grant ? { grant } : {}),
        ...(via ? { via } : {}),
      });
    } catch (err) {
      s.decisions.splice(s.decisions.indexOf(record), 1);
      s.status = previous;
      publish();
      // Its proof refused, nothing was recorded: the request is refused and the run goes on as it was.
      const refused = grantRefusal(err);
      if (refused) refuse(FailureType.GrantRefused, refused.message);
      throw err;
    }
    record.recorded = true;
    return s;
  }

  /** Why this decision cannot be taken now, if it cannot. */
  function refusal(decision: SupplierDecision, { actor, reason }: Pick<SupplierDecisionArgs, 'actor' | 'reason'>): [FailureType, string] | null {
    if (!actor.roles.includes('qa_manager') && !actor.roles.includes('admin'))
      return [FailureType.Forbidden, 'only QA may qualify suppliers'];
    if (!reason?.trim()) return [FailureType.InvalidInput, 'a reason is required'];
    if (s.status === 'disqualified') return [FailureType.RunFinished, `${input.supplier} is disqualified; nothing more can be done`];
    if (!DECISION_FROM[decision].includes(s.status))
      return [FailureType.WrongStage, `${input.supplier} is ${s.status}; cannot ${decision}`];
    return null;
  }

  for (const decision of Object.keys(DECISION_UPDATES) as SupplierDecision[]) {
    setHandler(DECISION_UPDATES[decision], (args: SupplierDecisionArgs) => decide(decision, args), {
      validator: (args: SupplierDecisionArgs) => {
        requireProof(args);
        const refused = refusal(decision, args);
        if (refused) refuse(...refused);
      },
    });
  }

  // Another process's decision (a CAPA closed with a verdict on this supplier): judged as an Update would be; one
  // that is already in force, repeated, or not allowed is logged and changes nothing.
  setHandler(processDecisionSignal, async (signal: ProcessDecisionArgs) => {
    // A malformed signal (no actor as labflow builds one) is not labflow's; it must not break the run.
    if (!isActor(signal?.actor) || typeof signal.via !== 'string' || !(signal.decision in DECISION_STATUS)) {
      log.warn('decision signal ignored: malformed', { via: String(signal?.via) });
      return;
    }
    const { decision, via, actor, reason } = signal;
    const args = { actor, reason: String(reason ?? '') };
    if (s.decisions.some((d) => d.via === via)) return;
    const refused = refusal(decision, args);
    if (refused) {
      const already = s.status === DECISION_STATUS[decision];
      log[already ? 'info' : 'warn'](already ? 'decision already in force' : 'decision refused', { via, decision, reason: refused[1] });
      return;
    }
    await decide(decision, args, via).catch((err) => log.warn('decision not recorded', { via, decision, error: String(err) }));
  });

  // Writes to the ERP one at a time, in decision order; a refused write waits for an operator's retry.
  for (;;) {
    await condition(
      () =>
        s.decisions.some((d) => d.erp === 'pending' && d.recorded) ||
        (retryRequested && s.decisions.at(-1)?.erp === 'refused') ||
        (s.status === 'disqualified' && s.decisions.every((d) => d.erp !== 'pending')) ||
        workflowInfo().continueAsNewSuggested,
    );
    if (retryRequested) {
      retryRequested = false;
      const last = s.decisions.at(-1);
      // An operator's retry is believed only if Postgres shows they asked for it (runs from before replay as they did).
      if (last?.erp === 'refused' && patched('supplier-retry-proof')) {
        const asked = await db
          .confirmErpRetry({ workflowId, supplier: input.supplier, seq: last.seq })
          .then(() => true)
          .catch((err: unknown) => {
            if (!grantRefusal(err)) throw err;
            log.warn('ERP retry signal refused: no retry was requested', { supplier: input.supplier });
            return false;
          });
        if (asked) last.erp = 'pending';
      } else if (last?.erp === 'refused') last.erp = 'pending';
    }
    const next = s.decisions.find((d) => d.erp === 'pending' && d.recorded);
    if (next) {
      // Only the latest decision matters to the ERP; superseded ones are marked so rather than written.
      const latest = s.decisions.filter((d) => d.recorded).at(-1) ?? next;
      for (const d of s.decisions) if (d.erp === 'pending' && d.seq < latest.seq) d.erp = 'skipped';
      const result = await erp.pushSupplierStatus({
        workflowId,
        supplier: input.supplier,
        seq: latest.seq,
        status: latest.status,
        eventKey: `${workflowId}:${latest.seq}`.replace(/[^\w.:-]/g, '_'),
        note: `${latest.status} by ${latest.by}: ${latest.reason}`,
      });
      latest.erp = result.erp;
      latest.erpDetail = result.detail;
      // Only a refused API key brings messages (an alert to IT); older activity results have none.
      const outboxIds = 'outboxIds' in result ? (result.outboxIds ?? []) : [];
      if (outboxIds.length) {
        await alerts.deliverEmails(outboxIds).catch((err) => log.warn('ERP alert email not delivered', { error: String(err) }));
      }
      continue;
    }
    if (s.status === 'disqualified') break;
    if (workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      return continueAsNew<typeof supplierQualificationWorkflow>({ supplier: input.supplier, resume: s });
    }
  }
  await condition(allHandlersFinished);
  return s;
}
