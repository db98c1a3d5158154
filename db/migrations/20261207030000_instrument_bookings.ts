import type { Knex } from 'knex';

/**
 * Instrument bookings beyond their reservation row: each instrument's approval rule (automatic, one approver, or two
 * tiers approving in order, each tier a list of usernames) and the append-only steps of every booking (requested,
 * approved at a tier, rejected, escalated, checked in and out, no show, bumped...), each with who took it.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table instrument_booking_rules (
      instrument_id uuid primary key references instruments(id),
      rule text not null check (rule in ('automatic', 'single', 'tiered')),
      tiers jsonb not null default '[]'::jsonb check (jsonb_typeof(tiers) = 'array'),
      updated_by uuid not null references users(id),
      updated_at timestamptz not null default now(),
      check ((rule = 'automatic') = (jsonb_array_length(tiers) = 0)),
      check (rule <> 'single' or jsonb_array_length(tiers) = 1),
      check (rule <> 'tiered' or jsonb_array_length(tiers) = 2)
    );
    create table instrument_booking_steps (
      id uuid primary key default gen_random_uuid(),
      reservation_id uuid not null references instrument_reservations(id),
      kind text not null check (kind in ('requested', 'approved', 'rejected', 'withdrawn', 'cancelled', 'checked_in',
        'checked_out', 'completed', 'no_show', 'bumped', 'escalated', 'lapsed')),
      tier integer check (tier between 1 and 2),
      actor_id uuid references users(id),
      details jsonb not null default '{}'::jsonb,
      occurred_at timestamptz not null default now(),
      idempotency_key text not null unique
    );
    create index instrument_booking_steps_reservation on instrument_booking_steps (reservation_id, occurred_at);
    create index instrument_reservations_booking_keyset on instrument_reservations (instrument_id, lower(period), id) where kind = 'booking';
    create index instrument_reservations_requester_keyset on instrument_reservations (requester_id, lower(period), id) where kind = 'booking';
    create trigger instrument_booking_steps_append_only before update or delete on instrument_booking_steps
      for each row execute function append_only_refuse_change();
    create trigger instrument_booking_steps_no_truncate before truncate on instrument_booking_steps
      for each statement execute function append_only_refuse_change();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop index if exists instrument_reservations_requester_keyset;
    drop index if exists instrument_reservations_booking_keyset;
    drop table if exists instrument_booking_steps;
    drop table if exists instrument_booking_rules;
  `);
}
