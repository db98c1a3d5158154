import { ApplicationFailure, upsertSearchAttributes } from '@temporalio/workflow';
import type { BookingMachineKind, BookingRef } from '../../activities/booking';
import { HOLDING_BOOKING_STATES, type BookingAction, type BookingInput, type BookingState, type BookingStateName } from '../../common/booking';
import { durationMs } from '../../common/durations';
import type { Priority } from '../../common/notifications';
import { DueAt, EntityId, EntityType, Stage } from '../../common/search-attributes';
import { db, iso, OutboxDeliveries, startNoticeRuns } from '../lib';
import { refuseAsRecorded } from '../lib/proof';

type Request = { actor: unknown; grant: string; code?: string; start?: string; end?: string } & object;

/**
 * One booking's state and its transitions. Each person's action is taken in turn: judged again against the state it
 * meets, recorded by one activity that checks its proof (and the gate, for the request and the check-in), and only
 * then applied. The run's own steps (automatic approval, escalation, lapse, no-show, check-out, a bump) are written
 * once in PostgreSQL and applied only as far as PostgreSQL bears them out.
 */
export class BookingCase {
  readonly state: BookingState;
  readonly ref: BookingRef;
  readonly outbox = new OutboxDeliveries();
  private last: Promise<unknown> = Promise.resolve();
  private notices: Promise<void>[] = [];
  /** Bumped by every change and every signal, so the run's wait wakes to recompute its timers. */
  changes = 0;
  bumpHeard = false;

  constructor(readonly input: BookingInput, workflowId: string, now: number) {
    this.ref = {
      workflowId,
      bookingId: input.bookingId,
      instrumentId: input.instrumentId,
      code: input.code,
      requesterId: input.requester.userId,
      tiers: input.tiers,
    };
    this.state = {
      workflowId,
      bookingId: input.bookingId,
      code: input.code,
      requester: input.requester.username,
      start: input.start,
      end: input.end,
      state: 'requested',
      recorded: false,
      rule: input.rule,
      tiers: input.tiers,
      approvals: [],
      approvalDueAt: iso(now + durationMs(input.settings.approvalDeadline)),
      escalated: false,
      checkedInAt: null,
      endedAt: null,
      endedBecause: null,
    };
  }

  get holding(): boolean {
    return HOLDING_BOOKING_STATES.includes(this.state.state);
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

  settled(): Promise<unknown> {
    return this.last;
  }

  /** Notice runs started and emails out: the run waits for these before it ends. */
  async drained(): Promise<void> {
    await Promise.all(this.notices);
    await this.outbox.drained();
  }

  private changed(): void {
    this.changes += 1;
    this.publish();
  }

  private end(to: BookingStateName, because: string | null, now: number): void {
    this.state.state = to;
    this.state.endedBecause = because;
    if (!this.holding) this.state.endedAt = iso(now);
    this.changed();
  }

  /** One person's step: recorded with its proof, then applied. A refusal by the recording step refuses the Update. */
  async record(action: BookingAction, to: BookingStateName, request: Request, extra: { tier?: number; window?: { opens: string; closes: string } } = {}) {
    return db
      .recordBookingStep({ ref: this.ref, from: this.state.state, to, tier: extra.tier, window: extra.window, proof: { action, grant: request.grant, actor: request.actor, request } })
      .catch(refuseAsRecorded);
  }

  /** The run's own step; applied only when PostgreSQL shows it was, else the run follows what PostgreSQL shows. */
  async machine(kind: BookingMachineKind, to: BookingStateName, now: number, extra: { because?: string; priority?: Priority; tier?: number } = {}): Promise<boolean> {
    const from = this.state.state;
    const done = await db.recordBookingMachineStep({ ref: this.ref, kind, from, to, ...extra });
    this.outbox.deliver(done.outboxIds);
    if (done.noticeIds.length) this.notices.push(startNoticeRuns(done.noticeIds));
    if (kind === 'escalated') {
      this.state.escalated = true;
      this.changed();
      return done.applied;
    }
    // Applied, or PostgreSQL shows the booking elsewhere (bumped by the instrument's side): the run follows.
    if (done.applied || done.state !== from) this.end(done.state, done.because, now);
    return done.applied;
  }

  /** The request: recorded with the requester's proof and the gate; an automatic rule approves it at once. */
  async request(now: () => number): Promise<void> {
    try {
      const { code, start, end } = this.input;
      await this.record('booking.request', 'requested', { ...this.input.request, code, start, end });
    } catch (err) {
      const why = err instanceof ApplicationFailure ? err.message : 'the request could not be recorded';
      await this.machine('refused', 'cancelled', now(), { because: `request refused: ${why}`.slice(0, 500) });
      return;
    }
    this.state.recorded = true;
    this.changed();
    if (this.input.rule === 'automatic' || this.input.tiers.length === 0) await this.machine('auto_approved', 'approved', now());
  }

  publish(): void {
    const s = this.state;
    const due = s.state === 'requested' ? s.approvalDueAt : s.state === 'approved' ? s.start : s.state === 'checked_in' ? s.end : null;
    upsertSearchAttributes([
      { key: EntityType, value: 'booking' },
      { key: EntityId, value: s.bookingId },
      { key: Stage, value: s.state },
      { key: DueAt, value: due ? new Date(due) : null },
    ]);
  }
}
