import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Knex } from 'knex';
import { BOOKERS, BOOKING_MANAGERS, boundBookingArgs, type BookingAction, type BookingStateName } from '../common/booking';
import { FailureType } from '../common/failures';
import type { Priority } from '../common/notifications';
import type { Actor } from '../common/roles';
import { appendAudit } from '../db/audit';
import { instrumentUsability, unusableWhy } from '../db/equipment';
import { INSTRUMENT_BOOKING } from '../db/gate';
import { resolveRecipients } from '../db/recipients';
import type { ActivityDeps } from './deps';
import { activityKey } from './keys';
import { grantChecks, Refusal, type RecordRef } from './lib/grant-checks';
import { writeNotice } from './notice-writer';
import { gateInTransaction } from './training';

/** A booking as its run names it: IDs, the requester, the period and who may approve it. */
export interface BookingRef {
  workflowId: string;
  bookingId: string;
  instrumentId: string;
  code: string;
  requesterId: string;
  tiers: string[][];
}

export interface BookingProof {
  action: BookingAction;
  grant: unknown;
  actor: unknown;
  request: unknown;
}

/** One person's step: the state the run is in and the one the action leads to; the approval tier, if it is one. */
export interface BookingStep {
  ref: BookingRef;
  from: BookingStateName;
  to: BookingStateName;
  tier?: number;
  /** The check-in window as the run computed it; PostgreSQL's clock judges it. */
  window?: { opens: string; closes: string };
  proof: BookingProof;
}

/** What the run does by itself: approve at once, escalate, let a request lapse, mark a no-show, check out, follow a bump. */
export type BookingMachineKind = 'auto_approved' | 'escalated' | 'lapsed' | 'no_show' | 'checked_out' | 'bumped' | 'refused';

export interface BookingMachineStep {
  ref: BookingRef;
  kind: BookingMachineKind;
  from: BookingStateName;
  to: BookingStateName;
  because?: string;
  /** For an escalation: how urgent, and the tier whose approvers are late (0-based). */
  priority?: Priority;
  tier?: number;
}

const SYSTEM = 'system:booking';
const STEP_KIND: Record<BookingAction, string> = {
  'booking.request': 'requested',
  'booking.approve': 'approved',
  'booking.reject': 'rejected',
  'booking.withdraw': 'withdrawn',
  'booking.cancel': 'cancelled',
  'booking.check_in': 'checked_in',
  'booking.check_out': 'checked_out',
};
const MACHINE_STEP_KIND: Record<BookingMachineKind, string> = {
  auto_approved: 'approved',
  escalated: 'escalated',
  lapsed: 'lapsed',
  no_show: 'no_show',
  checked_out: 'completed',
  bumped: 'bumped',
  refused: 'cancelled',
};

const refused = (type: FailureType, message: string) => ApplicationFailure.create({ type, message, nonRetryable: true });

/** Whether the person may take the action on this booking, as PostgreSQL knows them (the run's validator judged it first). */
function mayTake(action: BookingAction, ref: BookingRef, user: { id: string; username: string; roles: string[] }, tier?: number): boolean {
  const requester = user.id === ref.requesterId;
  switch (action) {
    case 'booking.request':
    case 'booking.check_in':
      return requester && BOOKERS.some((r) => user.roles.includes(r));
    case 'booking.withdraw':
    case 'booking.check_out':
      return requester;
    case 'booking.approve':
    case 'booking.reject':
      return !requester && tier !== undefined && (ref.tiers[tier] ?? []).includes(user.username);
    case 'booking.cancel':
      return requester || BOOKING_MANAGERS.some((r) => user.roles.includes(r)) || ref.tiers.some((t) => t.includes(user.username));
  }
}

export function bookingActivities(deps: ActivityDeps) {
  const { db, publicUrl, mailDomain } = deps;
  const checks = grantChecks(deps);
  const requireGate = gateInTransaction(deps);
  const link = (ref: BookingRef) => `${publicUrl}/api/v1/bookings/${ref.bookingId}`;
  const recordRef = (ref: BookingRef): RecordRef => ({
    workflowId: ref.workflowId,
    entityType: 'booking',
    entityId: ref.bookingId,
    label: `booking ${ref.bookingId} of instrument ${ref.code}`,
    link: link(ref),
  });

  /** The reservation row, locked; only this booking's own run may write it. */
  async function ownRow(trx: Knex.Transaction, ref: BookingRef) {
    const row = await trx('instrument_reservations').where({ id: ref.bookingId, kind: 'booking' }).forNoKeyUpdate().first('workflow_id', 'state', 'instrument_id');
    const running = Context.current().info.workflowExecution?.workflowId;
    // The API starts the run inside the transaction that inserts the row: a first step may come before the commit.
    // A row still missing after a few tries will not come (the API's transaction rolled back): refused as before.
    if (!row && running === ref.workflowId && Context.current().info.attempt <= 5) throw new Error(`booking ${ref.bookingId} is not committed yet`);
    if (!row || row.workflow_id !== ref.workflowId || running !== ref.workflowId || row.instrument_id !== ref.instrumentId) throw new Refusal('other_run', null);
    return row as { state: BookingStateName };
  }

  async function move(trx: Knex.Transaction, ref: BookingRef, from: BookingStateName, to: BookingStateName, because?: string) {
    if (from === to) return;
    const moved = await trx('instrument_reservations')
      .where({ id: ref.bookingId, kind: 'booking', state: from })
      .update({ state: to, ended_because: because?.slice(0, 500) ?? null, updated_at: trx.fn.now() });
    if (moved !== 1) throw refused(FailureType.WrongStage, `booking ${ref.bookingId} is no longer ${from}`);
  }

  const step = (trx: Knex.Transaction, ref: BookingRef, kind: string, actor: Actor | null, details: object, tier?: number) =>
    trx('instrument_booking_steps')
      .insert({
        reservation_id: ref.bookingId,
        kind,
        tier: tier === undefined ? null : tier + 1,
        actor_id: actor?.userId ?? null,
        details: JSON.stringify(details),
        idempotency_key: activityKey(`step:${kind}`),
      })
      .onConflict('idempotency_key')
      .ignore();

  return {
    /**
     * Records one person's step on a booking in one transaction with its proof: the grant is consumed, the person
     * re-read from PostgreSQL, and (for the request and the check-in) the gate checked again; the reservation
     * moves only from the state the run saw.
     */
    async recordBookingStep(s: BookingStep): Promise<{ actor: Actor }> {
      const { ref, from, to, proof } = s;
      return checks.recording(recordRef(ref), proof.action, async (trx) => {
        const row = await ownRow(trx, ref);
        // A step that keeps the state (the request, a tier's approval) is refused too once the booking moved on.
        if (row.state !== from) throw refused(FailureType.WrongStage, `booking ${ref.bookingId} is no longer ${from}`);
        const actor = await checks.granted(
          trx,
          ref,
          { grantId: proof.grant, action: proof.action, actor: proof.actor, args: boundBookingArgs(proof.action, proof.request) },
          (user) => mayTake(proof.action, ref, user, s.tier),
        );
        const r = (proof.request ?? {}) as Record<string, unknown>;
        if (proof.action === 'booking.request' || proof.action === 'booking.check_in') {
          await requireGate(trx, actor, { activity: INSTRUMENT_BOOKING, roles: BOOKERS, scope: ref.code }, { entityType: 'booking', entityId: ref.bookingId });
          const u = await instrumentUsability(trx, ref.code);
          if (!u?.usable) throw refused(FailureType.InstrumentNotUsable, `instrument ${ref.code} is not usable: ${u ? unusableWhy(u) : 'not registered'}`);
        }
        if (proof.action === 'booking.check_in') {
          const w = s.window;
          const inside = w && (await trx.first(trx.raw('now() >= ?::timestamptz and now() < ?::timestamptz as inside', [w.opens, w.closes])));
          if (!inside?.inside) throw refused(FailureType.WrongStage, `booking ${ref.bookingId} may be checked into from ${w?.opens} until ${w?.closes}`);
        }
        const because = typeof r.reason === 'string' ? r.reason : undefined;
        await move(trx, ref, from, to, because);
        const details = { from, to, ...(because ? { reason: because } : {}), ...(typeof r.comment === 'string' ? { comment: r.comment } : {}) };
        await step(trx, ref, STEP_KIND[proof.action], actor, details, s.tier);
        await appendAudit(trx, {
          actorId: actor.userId,
          actor: actor.username,
          action: proof.action,
          entityType: 'booking',
          entityId: ref.bookingId,
          details: { workflowId: ref.workflowId, instrument: ref.code, ...details, ...(s.tier !== undefined ? { tier: s.tier + 1 } : {}) },
          idempotencyKey: activityKey(),
        });
        return { actor };
      });
    },

    /**
     * What the run does by itself, written once however often it runs. A move PostgreSQL no longer bears out (the
     * booking was checked into just before its no-show moment, or bumped) is not applied: `applied` is false and
     * `state` says where the booking is. A bump is followed only when the row shows it.
     */
    async recordBookingMachineStep(s: BookingMachineStep): Promise<{ applied: boolean; state: BookingStateName; because: string | null; outboxIds: string[]; noticeIds: string[] }> {
      const { ref } = s;
      return db.transaction(async (trx) => {
        const row = await ownRow(trx, ref).catch((err: unknown) => {
          if (err instanceof Refusal) throw refused(FailureType.Forbidden, `this run is not booking ${ref.bookingId}'s`);
          throw err;
        });
        const current = await trx('instrument_reservations').where({ id: ref.bookingId }).first('ended_because');
        const nothing = { applied: false, state: row.state, because: current?.ended_because ?? null, outboxIds: [], noticeIds: [] };
        if (s.kind === 'bumped') {
          if (row.state !== 'bumped') return nothing;
          await step(trx, ref, 'bumped', null, { from: s.from, because: current?.ended_because ?? null });
          await appendAudit(trx, {
            actor: SYSTEM,
            action: 'booking.bumped',
            entityType: 'booking',
            entityId: ref.bookingId,
            details: { workflowId: ref.workflowId, instrument: ref.code, from: s.from, because: current?.ended_because ?? null },
            idempotencyKey: activityKey(),
          });
          return { ...nothing, applied: true };
        }
        if (row.state !== s.from) return nothing;
        await move(trx, ref, s.from, s.to, s.because);
        const details = { from: s.from, to: s.to, ...(s.because ? { because: s.because } : {}), ...(s.priority ? { priority: s.priority } : {}) };
        await step(trx, ref, MACHINE_STEP_KIND[s.kind], null, details, s.tier);
        await appendAudit(trx, {
          actor: SYSTEM,
          action: `booking.${s.kind}`,
          entityType: 'booking',
          entityId: ref.bookingId,
          details: { workflowId: ref.workflowId, instrument: ref.code, ...details },
          idempotencyKey: activityKey(),
        });
        if (s.kind !== 'escalated') return { applied: true, state: s.to, because: s.because ?? null, outboxIds: [], noticeIds: [] };
        // Late approvers and the lab directors hear of it; urgent when the booking starts within the approval deadline.
        const approvers = await trx('users').whereIn('username', ref.tiers[s.tier ?? 0] ?? []).select('id', 'username');
        const recipients = await resolveRecipients(trx, [
          ...approvers.map((a: { id: string; username: string }) => ({ kind: 'user' as const, userId: a.id, username: a.username })),
          { kind: 'role', role: 'lab_director' },
        ]);
        const notice = await writeNotice(
          trx,
          {
            idempotencyKey: `booking-escalated:${ref.bookingId}`,
            kind: 'booking.approval_overdue',
            priority: s.priority ?? 'normal',
            subjectType: 'booking',
            subjectId: ref.bookingId,
            facts: { instrument: ref.code, bookingId: ref.bookingId, tier: (s.tier ?? 0) + 1 },
            link: link(ref),
            recipients,
          },
          mailDomain,
        );
        return { applied: true, state: s.to, because: null, outboxIds: notice.outboxIds, noticeIds: notice.needsRun ? [notice.noticeId] : [] };
      });
    },
  };
}
