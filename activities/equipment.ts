import { ApplicationFailure } from '@temporalio/activity';
import type { Knex } from 'knex';
import type { CapaInput, CapaSource } from '../common/capa';
import {
  boundInstrumentArgs,
  CALIBRATION_PREPARERS,
  mayInstrumentAction,
  type InstrumentAction,
  type InstrumentStateName,
  type OutOfServiceReason,
} from '../common/equipment';
import { FailureType } from '../common/failures';
import { workflowIds } from '../common/ids';
import type { Actor } from '../common/roles';
import type { SignatureInput } from '../common/signatures';
import { appendAudit } from '../db/audit';
import { allocateCapaNumber } from '../db/capa';
import { openCapaForInstrument, resultsSinceLastPassingQc } from '../db/equipment';
import { recordSignature } from '../db/signatures';
import type { ActivityDeps } from './deps';
import { activityKey } from './keys';
import { grantChecks, type ActionProof, type RecordRef } from './lib/grant-checks';

/** An instrument as its run names it: IDs only. */
export interface InstrumentRef {
  workflowId: string;
  instrumentId: string;
  code: string;
}

export type InstrumentProof = ActionProof<InstrumentAction>;

/** One person's step: the state and reasons the run is in, and those the action leads to. */
export interface InstrumentStep {
  ref: InstrumentRef;
  from: InstrumentStateName;
  to: InstrumentStateName;
  reasons: OutOfServiceReason[];
  proof: InstrumentProof;
}

/** What a failure's CAPA needs from the run: link the instrument to an open CAPA, or start a new one. */
export type InstrumentCapaPlan = { kind: 'link'; workflowId: string } | { kind: 'start'; workflowId: string; input: CapaInput };

export interface InstrumentStepResult {
  actor: Actor;
  certificateId?: string;
  planId?: string;
  /** How many results the instrument produced since its last passing QC (listed on its record). */
  impacted?: number;
  capa?: InstrumentCapaPlan;
}

export const invalidInstrumentStep = (message: string) => ApplicationFailure.create({ type: FailureType.InvalidInput, message, nonRetryable: true });
const wrongStage = (message: string) => ApplicationFailure.create({ type: FailureType.WrongStage, message, nonRetryable: true });

export function equipmentActivities(deps: ActivityDeps) {
  const { publicUrl } = deps;
  const checks = grantChecks(deps);
  const recordRef = (ref: InstrumentRef): RecordRef => ({
    workflowId: ref.workflowId,
    entityType: 'instrument',
    entityId: ref.code,
    label: `instrument ${ref.code}`,
    link: `${publicUrl}/api/v1/instruments/${ref.code}`,
  });

  /** Checks the proof inside the recording transaction: the run is this instrument's, the grant holds, the role fits. */
  async function proven(trx: Knex.Transaction, ref: InstrumentRef, proof: InstrumentProof): Promise<Actor> {
    await checks.ownedByRun(trx, ref, 'instruments', ref.instrumentId);
    return checks.provenAction(trx, ref, proof, boundInstrumentArgs(proof.action, proof.request), mayInstrumentAction);
  }

  const event = async (trx: Knex.Transaction, ref: InstrumentRef, kind: string, actor: Actor | null, details: object, passed?: boolean) => {
    const key = activityKey(`event:${kind}`);
    await trx('instrument_events')
      .insert({ instrument_id: ref.instrumentId, kind, passed: passed ?? null, actor_id: actor?.userId ?? null, details: JSON.stringify(details), idempotency_key: key })
      .onConflict('idempotency_key')
      .ignore();
  };

  /** The CAPA a failed QC or a defect belongs to: decided once, with the failure's event, under a lock per instrument. */
  async function capaFor(trx: Knex.Transaction, ref: InstrumentRef, actor: Actor, what: string): Promise<InstrumentCapaPlan> {
    await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`instrument-capa:${ref.code}`]);
    const source: CapaSource = { type: 'instrument', id: ref.code };
    const open = await openCapaForInstrument(trx, ref.instrumentId, source);
    if (open) return { kind: 'link', workflowId: open };
    const number = await allocateCapaNumber(trx);
    return {
      kind: 'start',
      workflowId: workflowIds.capa(number),
      input: {
        number,
        title: `Instrument ${ref.code}: ${what}`,
        description: `${what} on instrument ${ref.code}. The results it produced since its last passing QC are listed on its record (${publicUrl}/api/v1/instruments/${ref.code}).`,
        sources: [source],
        initiatedBy: { userId: actor.userId, username: actor.username },
      },
    };
  }

  /** A failure that puts results in doubt: the results since the last passing QC, and the CAPA it belongs to. */
  async function failure(trx: Knex.Transaction, ref: InstrumentRef, actor: Actor, what: string) {
    const impactedResults = await resultsSinceLastPassingQc(trx, { id: ref.instrumentId, code: ref.code });
    const capa = await capaFor(trx, ref, actor, what);
    return { impactedResults, capa };
  }

  return {
    /**
     * Records one person's step on an instrument in one transaction with its proof: a reviewed and signed
     * calibration certificate (superseding the one before), a QC result, a defect, maintenance started, finished
     * or planned, the verification that returns it to service, its retirement. The register's state and reasons
     * move only from the state the run saw.
     */
    async recordInstrumentStep(step: InstrumentStep): Promise<InstrumentStepResult> {
      const { ref, from, to, reasons, proof } = step;
      return checks.recording(recordRef(ref), proof.action, async (trx) => {
        const actor = await proven(trx, ref, proof);
        const r = proof.request as Record<string, unknown>;
        const result: InstrumentStepResult = { actor };
        const fields: Record<string, unknown> = {};
        let details: Record<string, unknown> = {};
        switch (proof.action) {
          case 'instrument.calibrate': {
            const preparer = await trx('users').where({ username: String(r.preparedBy), active: true }).first('id', 'roles');
            if (!preparer || !CALIBRATION_PREPARERS.some((role) => preparer.roles.includes(role))) {
              throw invalidInstrumentStep(`${String(r.preparedBy)} is not an active member of the lab who may prepare a calibration record`);
            }
            if (preparer.id === actor.userId) throw invalidInstrumentStep('the reviewer of a calibration certificate is not the person who prepared it');
            const signatureId = await recordSignature(trx, {
              idempotencyKey: activityKey('signature'),
              entityType: 'instrument',
              entityId: ref.code,
              workflowId: ref.workflowId,
              round: 1,
              stageIndex: 0,
              stageName: 'calibration review',
              actor,
              signature: proof.signature as SignatureInput,
            });
            const key = activityKey('certificate');
            await trx('instrument_calibrations')
              .insert({
                instrument_id: ref.instrumentId,
                certificate_number: r.certificateNumber,
                valid_from: r.validFrom,
                valid_to: r.validTo,
                document_hash: r.documentHash,
                results: r.results,
                prepared_by: preparer.id,
                reviewed_by: actor.userId,
                signature_id: signatureId,
                idempotency_key: key,
              })
              .onConflict('idempotency_key')
              .ignore();
            const cert = await trx('instrument_calibrations').where({ idempotency_key: key }).first('id', 'valid_to');
            await trx('instrument_calibrations')
              .where({ instrument_id: ref.instrumentId })
              .whereNot({ id: cert.id })
              .whereNull('superseded_at')
              .update({ superseded_at: trx.fn.now() });
            Object.assign(fields, { current_certificate_id: cert.id, calibration_valid_to: cert.valid_to });
            result.certificateId = cert.id;
            details = { certificateId: cert.id, certificateNumber: r.certificateNumber, validTo: r.validTo, signatureId };
            break;
          }
          case 'instrument.qc': {
            const passed = r.passed === true;
            const found = passed ? null : await failure(trx, ref, actor, 'QC failed');
            details = { material: r.material, note: r.note ?? null, ...found };
            await event(trx, ref, 'qc', actor, details, passed);
            if (found) Object.assign(result, { impacted: found.impactedResults.length, capa: found.capa });
            break;
          }
          case 'instrument.report_defect': {
            const found = await failure(trx, ref, actor, 'Defect reported');
            details = { description: r.description, ...found };
            await event(trx, ref, 'defect', actor, details);
            Object.assign(result, { impacted: found.impactedResults.length, capa: found.capa });
            break;
          }
          case 'instrument.start_maintenance':
            details = { description: r.description, planId: r.planId ?? null };
            await event(trx, ref, 'maintenance_started', actor, details);
            break;
          case 'instrument.finish_maintenance': {
            const started = await trx('instrument_events')
              .where({ instrument_id: ref.instrumentId, kind: 'maintenance_started' })
              .orderBy('occurred_at', 'desc')
              .first('details');
            const planId = (started?.details as { planId?: string | null } | undefined)?.planId ?? null;
            if (planId) await trx('instrument_maintenance_plans').where({ id: planId, instrument_id: ref.instrumentId }).update({ done_at: trx.fn.now() });
            details = { outcome: r.outcome, planId };
            await event(trx, ref, 'maintenance_finished', actor, details);
            break;
          }
          case 'instrument.plan_maintenance': {
            const key = activityKey('plan');
            await trx('instrument_maintenance_plans')
              .insert({ instrument_id: ref.instrumentId, description: r.description, due_at: r.dueAt, idempotency_key: key })
              .onConflict('idempotency_key')
              .ignore();
            result.planId = (await trx('instrument_maintenance_plans').where({ idempotency_key: key }).first('id')).id;
            details = { planId: result.planId, description: r.description, dueAt: r.dueAt };
            await event(trx, ref, 'maintenance_planned', actor, details);
            break;
          }
          case 'instrument.return_to_service': {
            const current = await trx('instruments').where({ id: ref.instrumentId }).first(trx.raw('coalesce(calibration_valid_to > now(), false) as valid'));
            if (!current.valid) throw wrongStage(`instrument ${ref.code} has no current calibration certificate`);
            details = { verification: r.verification };
            await event(trx, ref, 'returned_to_service', actor, details);
            break;
          }
          case 'instrument.retire':
            details = { reason: r.reason };
            await event(trx, ref, 'retired', actor, details);
            break;
        }
        const moved = await trx('instruments')
          .where({ id: ref.instrumentId, state: from })
          .update({ ...fields, state: to, reasons, updated_at: trx.fn.now() });
        if (moved !== 1) throw invalidInstrumentStep(`instrument ${ref.code} is no longer ${from}`);
        await appendAudit(trx, {
          actorId: actor.userId,
          actor: actor.username,
          action: proof.action,
          entityType: 'instrument',
          entityId: ref.code,
          details: { workflowId: ref.workflowId, from, to, reasons, ...details },
          idempotencyKey: activityKey(),
        });
        return result;
      });
    },
  };
}
