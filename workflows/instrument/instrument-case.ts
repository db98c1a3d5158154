import { getExternalWorkflowHandle, log, patched, upsertSearchAttributes } from '@temporalio/workflow';
import { bookingBumpedSignal } from '../../common/booking';
import type { InstrumentCapaPlan, InstrumentRef, InstrumentStepResult } from '../../activities/equipment';
import {
  CLEARED_BY_VERIFICATION,
  type FinishMaintenanceArgs,
  type InstrumentAction,
  type InstrumentInput,
  type InstrumentState,
  type InstrumentStateName,
  type OutOfServiceReason,
  type PlanMaintenanceArgs,
  type RecordCalibrationArgs,
  type RecordQcArgs,
  type ReportDefectArgs,
  type RetireArgs,
  type ReturnToServiceArgs,
  type StartMaintenanceArgs,
} from '../../common/equipment';
import { DueAt, EntityId, EntityType, Stage } from '../../common/search-attributes';
import { openOrLinkCapa } from '../capa/open-or-link';
import { db, OutboxDeliveries } from '../lib';
import { refuseAsRecorded } from '../lib/proof';
import { reminderKey } from './deadlines';

/** Runs that took an instrument out of service before bookings existed record no signals to them. */
export const BUMPS_BOOKINGS_PATCH = 'instrument-bumps-bookings';

type Request = { actor: unknown; grant: string; signature?: RecordCalibrationArgs['signature'] };

const without = (reasons: OutOfServiceReason[], ...gone: readonly OutOfServiceReason[]) => reasons.filter((r) => !gone.includes(r));
const adding = (reasons: OutOfServiceReason[], reason: OutOfServiceReason) => (reasons.includes(reason) ? reasons : [...reasons, reason]);

/**
 * One instrument's state and its transitions. Each person's action is taken in turn: judged again against the state
 * it meets, recorded by one activity that checks its proof, and only then applied, so a refused proof changes
 * nothing. The run holds IDs, dates and flags; descriptions and results stay in Postgres.
 */
export class InstrumentCase {
  readonly state: InstrumentState;
  readonly ref: InstrumentRef;
  readonly outbox = new OutboxDeliveries();
  private last: Promise<unknown> = Promise.resolve();
  private background = 0;
  /** Bumped by every change, so the run's wait wakes to recompute its timers. */
  changes = 0;

  constructor(input: InstrumentInput, workflowId: string) {
    this.ref = { workflowId, instrumentId: input.instrumentId, code: input.code };
    this.state = input.resume?.snapshot ?? {
      workflowId,
      instrumentId: input.instrumentId,
      code: input.code,
      state: 'commissioning',
      reasons: [],
      verificationRequired: true,
      certificate: null,
      reminderBefore: input.reminderBefore,
      remindersSent: [],
      plans: [],
      capas: [],
      continuedRuns: 0,
    };
  }

  /** Nothing in flight: no action being recorded, no CAPA being opened, no email out. */
  get idle(): boolean {
    return this.background === 0 && this.outbox.inFlight === 0;
  }

  /** Runs an action after the one before it, judged again against the state it then meets. */
  inTurn(judge: () => void, work: () => Promise<void>): Promise<void> {
    const next = this.last.then(async () => {
      judge();
      await work();
    });
    this.last = next.catch(() => undefined);
    return next;
  }

  private changed(): void {
    this.changes += 1;
    this.publish();
  }

  private record(action: InstrumentAction, to: InstrumentStateName, reasons: OutOfServiceReason[], request: Request): Promise<InstrumentStepResult> {
    return db
      .recordInstrumentStep({
        ref: this.ref,
        from: this.state.state,
        to,
        reasons,
        proof: { action, grant: request.grant, actor: request.actor, request, signature: request.signature },
      })
      .then((result) => {
        this.tellBumped(result.bumped);
        return result;
      })
      // A refusal by the recording step (an unproven action, a state Postgres no longer shows) refuses the Update.
      .catch(refuseAsRecorded);
  }

  /** Out of service (unless still commissioning) for a reason that needs a person's verification to clear. */
  private outFor(reason: OutOfServiceReason): { to: InstrumentStateName; reasons: OutOfServiceReason[] } {
    const s = this.state;
    return { to: s.state === 'in_service' ? 'out_of_service' : s.state, reasons: adding(s.reasons, reason) };
  }

  async calibrate(args: RecordCalibrationArgs): Promise<void> {
    const s = this.state;
    const reasons = without(s.reasons, 'calibration_expired');
    // A lapsed certificate's renewal is itself the check: back in service when nothing else keeps it out.
    const to = s.state === 'out_of_service' && reasons.length === 0 && !s.verificationRequired ? 'in_service' : s.state;
    const { certificateId } = await this.record('instrument.calibrate', to, reasons, args);
    s.certificate = { id: certificateId!, validFrom: args.validFrom, validTo: new Date(Date.parse(args.validTo)).toISOString() };
    s.state = to;
    s.reasons = reasons;
    this.changed();
  }

  async qc(args: RecordQcArgs): Promise<void> {
    const s = this.state;
    const next = args.passed ? { to: s.state, reasons: without(s.reasons, 'qc_failed') } : this.outFor('qc_failed');
    const result = await this.record('instrument.qc', next.to, next.reasons, args);
    s.state = next.to;
    s.reasons = next.reasons;
    if (!args.passed) s.verificationRequired = true;
    this.afterFailure(result);
  }

  async defect(args: ReportDefectArgs): Promise<void> {
    const next = this.outFor('defect');
    const result = await this.record('instrument.report_defect', next.to, next.reasons, args);
    this.state.state = next.to;
    this.state.reasons = next.reasons;
    this.state.verificationRequired = true;
    this.afterFailure(result);
  }

  async startMaintenance(args: StartMaintenanceArgs): Promise<void> {
    const next = this.outFor('maintenance');
    await this.record('instrument.start_maintenance', next.to, next.reasons, args);
    for (const p of this.state.plans) if (p.id === args.planId) p.started = true;
    this.state.state = next.to;
    this.state.reasons = next.reasons;
    this.state.verificationRequired = true;
    this.changed();
  }

  async finishMaintenance(args: FinishMaintenanceArgs): Promise<void> {
    const s = this.state;
    const reasons = without(s.reasons, 'maintenance');
    await this.record('instrument.finish_maintenance', s.state, reasons, args);
    s.reasons = reasons;
    for (const p of s.plans) if (p.started) p.done = true;
    this.changed();
  }

  async planMaintenance(args: PlanMaintenanceArgs): Promise<void> {
    const s = this.state;
    const { planId } = await this.record('instrument.plan_maintenance', s.state, s.reasons, args);
    s.plans.push({ id: planId!, dueAt: new Date(Date.parse(args.dueAt)).toISOString(), notified: false, started: false, done: false });
    this.changed();
  }

  async returnToService(args: ReturnToServiceArgs): Promise<void> {
    const s = this.state;
    const reasons = without(s.reasons, ...CLEARED_BY_VERIFICATION);
    await this.record('instrument.return_to_service', 'in_service', reasons, args);
    s.state = 'in_service';
    s.reasons = reasons;
    s.verificationRequired = false;
    this.changed();
  }

  async retire(args: RetireArgs): Promise<void> {
    await this.record('instrument.retire', 'retired', this.state.reasons, args);
    this.state.state = 'retired';
    this.changed();
  }

  /** The certificate ended: out of service at that moment, unless a renewal came first. */
  async expire(): Promise<void> {
    const s = this.state;
    const cert = s.certificate;
    if (!cert) return;
    // Written once in Postgres (a retry finds it done); the run mirrors it either way.
    const { outboxIds, bumped } = await db.expireCalibration({ ref: this.ref, certificateId: cert.id });
    this.tellBumped(bumped);
    s.reasons = adding(s.reasons, 'calibration_expired');
    if (s.state === 'in_service') s.state = 'out_of_service';
    this.outbox.deliver(outboxIds);
    this.changed();
  }

  async remind(leadTimes: string[]): Promise<void> {
    const s = this.state;
    const cert = s.certificate;
    if (!cert) return;
    const { outboxIds } = await db.remindCalibration({ ref: this.ref, certificateId: cert.id, leadTimes });
    for (const lead of leadTimes) s.remindersSent.push(reminderKey(cert.id, lead));
    // Only the current certificate's reminders are kept: a renewal leaves the old ones behind for good.
    s.remindersSent = s.remindersSent.filter((key) => key.startsWith(`${s.certificate?.id}:`));
    this.outbox.deliver(outboxIds);
    this.changed();
  }

  async announceDue(planId: string): Promise<void> {
    const { outboxIds } = await db.announceMaintenanceDue({ ref: this.ref, planId });
    const plan = this.state.plans.find((p) => p.id === planId);
    if (plan) plan.notified = true;
    this.outbox.deliver(outboxIds);
    this.changed();
  }

  /** A failed QC or a defect: the CAPA it belongs to is opened or linked in the background; the Update does not wait. */
  private afterFailure(result: InstrumentStepResult): void {
    const plan = result.capa;
    if (plan && !this.state.capas.includes(plan.workflowId)) this.state.capas.push(plan.workflowId);
    this.changed();
    if (!plan) return;
    this.background += 1;
    void this.takeUpCapa(plan).finally(() => {
      this.background -= 1;
      this.changes += 1;
    });
  }

  private async takeUpCapa(plan: InstrumentCapaPlan): Promise<void> {
    try {
      await openOrLinkCapa(plan, [{ type: 'instrument', id: this.ref.code }], 'process:equipment');
      await db.noteInstrumentCapa({ ref: this.ref, capaWorkflowId: plan.workflowId, linked: plan.kind === 'link' });
    } catch (err) {
      log.warn('instrument CAPA not taken up', { capa: plan.workflowId, error: String(err) });
    }
  }

  /** The bookings PostgreSQL bumped with this step hear of it; each run checks the row before it follows. */
  private tellBumped(workflowIds: string[] | undefined): void {
    if (!workflowIds?.length || !patched(BUMPS_BOOKINGS_PATCH)) return;
    this.background += 1;
    void Promise.all(
      workflowIds.map((id) =>
        getExternalWorkflowHandle(id)
          .signal(bookingBumpedSignal)
          .catch((err: unknown) => log.warn('booking not told of its bump', { booking: id, error: String(err) })),
      ),
    ).finally(() => {
      this.background -= 1;
      this.changes += 1;
    });
  }

  /** Waits until every action in turn has been recorded. */
  settled(): Promise<unknown> {
    return this.last;
  }

  publish(): void {
    const s = this.state;
    upsertSearchAttributes([
      { key: EntityType, value: 'instrument' },
      { key: EntityId, value: s.code },
      { key: Stage, value: s.state },
      { key: DueAt, value: s.certificate && s.state !== 'retired' ? new Date(s.certificate.validTo) : null },
    ]);
  }
}
