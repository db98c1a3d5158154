import { Context } from '@temporalio/activity';
import type { Knex } from 'knex';
import { appendAudit } from '../db/audit';
import { bumpHoldingBookings } from '../db/reservations';
import { queueNotifications } from '../db/notifications';
import { resolveRecipients } from '../db/recipients';
import type { ActivityDeps } from './deps';
import type { InstrumentRef } from './equipment';
import { invalidInstrumentStep } from './equipment';
import { activityKey } from './keys';

const SYSTEM = 'system:equipment';

/**
 * What an instrument's run does by itself: take it out of service when its certificate ends, remind QA before
 * that, announce maintenance that falls due, and note the CAPA a failure opened or joined. Each checks that the
 * run asking is this instrument's; each is written once, however often it runs.
 */
export function equipmentTimerActivities({ db, publicUrl, mailDomain }: ActivityDeps) {
  const link = (ref: InstrumentRef) => `${publicUrl}/api/v1/instruments/${ref.code}`;

  async function ownRow(trx: Knex.Transaction, ref: InstrumentRef) {
    const row = await trx('instruments').where({ id: ref.instrumentId }).forNoKeyUpdate().first();
    const running = Context.current().info.workflowExecution?.workflowId;
    if (!row || row.workflow_id !== ref.workflowId || running !== ref.workflowId) throw invalidInstrumentStep(`this run is not instrument ${ref.code}'s`);
    return row;
  }

  const notifyQa = async (trx: Knex.Transaction, idempotencyKey: string, kind: string, title: string, body: string, ref: InstrumentRef) =>
    queueNotifications(
      trx,
      await resolveRecipients(trx, [{ kind: 'role', role: 'qa_manager' }]),
      { idempotencyKey, kind, title, body, link: link(ref) },
      mailDomain,
    );

  const audit = (trx: Knex.Transaction, ref: InstrumentRef, action: string, details: Record<string, unknown>) =>
    appendAudit(trx, {
      actor: SYSTEM,
      action,
      entityType: 'instrument',
      entityId: ref.code,
      details: { workflowId: ref.workflowId, ...details },
      idempotencyKey: activityKey(),
    });

  return {
    /**
     * The certificate ended: the instrument is out of service for `calibration_expired` (a renewal recorded first
     * leaves it alone). Answers whether it was applied and the emails to deliver.
     */
    async expireCalibration(p: { ref: InstrumentRef; certificateId: string }): Promise<{ applied: boolean; outboxIds: string[]; bumped?: string[] }> {
      return db.transaction(async (trx) => {
        const row = await ownRow(trx, p.ref);
        if (row.current_certificate_id !== p.certificateId || row.state === 'retired' || row.reasons.includes('calibration_expired')) {
          return { applied: false, outboxIds: [] };
        }
        const reasons = [...row.reasons, 'calibration_expired'];
        const state = row.state === 'in_service' ? 'out_of_service' : row.state;
        await trx('instruments').where({ id: row.id }).update({ state, reasons, updated_at: trx.fn.now() });
        const bumped = state === 'out_of_service' ? await bumpHoldingBookings(trx, row.id, 'instrument out of service: calibration_expired') : [];
        await trx('instrument_events')
          .insert({ instrument_id: row.id, kind: 'calibration_expired', details: JSON.stringify({ certificateId: p.certificateId }), idempotency_key: activityKey() })
          .onConflict('idempotency_key')
          .ignore();
        await audit(trx, p.ref, 'instrument.calibration_expired', { certificateId: p.certificateId, from: row.state, to: state, reasons, ...(bumped.length ? { bumpedBookings: bumped } : {}) });
        const outboxIds = await notifyQa(
          trx,
          `instrument-expired:${p.certificateId}`,
          'instrument.calibration_expired',
          `Instrument ${p.ref.code} is out of service: its calibration expired`,
          `The calibration certificate of instrument ${p.ref.code} has ended. Results can no longer be entered on it until a new certificate is recorded.`,
          p.ref,
        );
        return { applied: true, outboxIds, bumped };
      });
    },

    /**
     * Reminds QA that the certificate ends soon, once per certificate and lead time: Postgres keeps each reminder
     * sent (a restarted worker or a replay finds it there), and a superseded certificate is reminded of no more.
     */
    async remindCalibration(p: { ref: InstrumentRef; certificateId: string; leadTimes: string[] }): Promise<{ sent: string[]; outboxIds: string[] }> {
      return db.transaction(async (trx) => {
        await ownRow(trx, p.ref);
        const cert = await trx('instrument_calibrations')
          .where({ id: p.certificateId, instrument_id: p.ref.instrumentId })
          .whereNull('superseded_at')
          .first('valid_to', 'certificate_number');
        if (!cert) return { sent: [], outboxIds: [] };
        const inserted = await trx('instrument_calibration_reminders')
          .insert(p.leadTimes.map((lead) => ({ certificate_id: p.certificateId, lead_time: lead })))
          .onConflict(['certificate_id', 'lead_time'])
          .ignore()
          .returning('lead_time');
        const sent = inserted.map((r: { lead_time: string }) => r.lead_time);
        if (!sent.length) return { sent, outboxIds: [] };
        const validTo = new Date(cert.valid_to).toISOString();
        await audit(trx, p.ref, 'instrument.calibration_reminder', { certificateId: p.certificateId, leadTimes: sent, validTo });
        const outboxIds = await notifyQa(
          trx,
          `instrument-reminder:${p.certificateId}:${sent.join(',')}`,
          'instrument.calibration_due',
          `Calibration of instrument ${p.ref.code} ends ${validTo}`,
          `Certificate ${cert.certificate_number} of instrument ${p.ref.code} is valid until ${validTo}. Record the next certificate before then, or the instrument goes out of service at that moment.`,
          p.ref,
        );
        return { sent, outboxIds };
      });
    },

    /** A maintenance plan fell due: QA and the lab hear of it once. */
    async announceMaintenanceDue(p: { ref: InstrumentRef; planId: string }): Promise<{ outboxIds: string[] }> {
      return db.transaction(async (trx) => {
        await ownRow(trx, p.ref);
        const plan = await trx('instrument_maintenance_plans')
          .where({ id: p.planId, instrument_id: p.ref.instrumentId })
          .whereNull('notified_at')
          .whereNull('done_at')
          .update({ notified_at: trx.fn.now() })
          .returning(['description', 'due_at']);
        if (!plan.length) return { outboxIds: [] };
        const dueAt = new Date(plan[0].due_at).toISOString();
        await audit(trx, p.ref, 'instrument.maintenance_due', { planId: p.planId, dueAt });
        const outboxIds = await notifyQa(
          trx,
          `instrument-maintenance:${p.planId}`,
          'instrument.maintenance_due',
          `Maintenance of instrument ${p.ref.code} is due`,
          `Planned maintenance of instrument ${p.ref.code} fell due at ${dueAt}: ${plan[0].description}`,
          p.ref,
        );
        return { outboxIds };
      });
    },

    /** The CAPA a failure belongs to was started or linked by the run: kept in the instrument's trail. */
    async noteInstrumentCapa(p: { ref: InstrumentRef; capaWorkflowId: string; linked: boolean }): Promise<void> {
      await db.transaction(async (trx) => {
        await ownRow(trx, p.ref);
        await audit(trx, p.ref, p.linked ? 'instrument.capa_linked' : 'instrument.capa_opened', { capaWorkflowId: p.capaWorkflowId });
      });
    },
  };
}
