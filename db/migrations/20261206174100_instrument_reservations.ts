import type { Knex } from 'knex';

/**
 * Instrument reservations: bookings and the maintenance windows that block bookings, in one table so that the
 * database itself refuses two holding reservations of one instrument whose periods overlap (an exclusion
 * constraint over the instrument and the period, which needs btree_gist for the equality on the instrument).
 * A booking holds its period while requested, approved or checked in; a blocking maintenance window while planned
 * or under way. Ending a reservation (rejected, withdrawn, completed, no show, cancelled, bumped, finished) frees it.
 */
export async function up(knex: Knex): Promise<void> {
  const available = await knex.raw(`select 1 from pg_available_extensions where name = 'btree_gist'`);
  if (!available.rows.length) {
    throw new Error(
      'the PostgreSQL extension btree_gist is not available on this server: install the contrib package ' +
        '(e.g. postgresql-contrib) so that instrument bookings can be refused by an exclusion constraint',
    );
  }
  // Trusted since PostgreSQL 13: the migration (owner) role creates it without being a superuser.
  await knex.raw('create extension if not exists btree_gist');
  await knex.raw(`
    create table instrument_reservations (
      id uuid primary key default gen_random_uuid(),
      instrument_id uuid not null references instruments(id),
      kind text not null check (kind in ('booking', 'maintenance')),
      workflow_id text unique,
      period tstzrange not null check (not isempty(period) and not lower_inf(period) and not upper_inf(period)),
      state text not null check (state in ('requested', 'approved', 'rejected', 'withdrawn', 'checked_in', 'completed',
        'no_show', 'cancelled', 'bumped', 'planned', 'under_way', 'finished')),
      requester_id uuid references users(id),
      purpose text check (char_length(purpose) <= 500),
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      ended_because text check (char_length(ended_because) <= 500),
      check ((kind = 'booking') = (requester_id is not null)),
      check (kind = 'booking' and state in ('requested', 'approved', 'rejected', 'withdrawn', 'checked_in', 'completed', 'no_show', 'cancelled', 'bumped')
          or kind = 'maintenance' and state in ('planned', 'under_way', 'finished', 'cancelled')),
      constraint instrument_reservations_no_overlap exclude using gist (instrument_id with =, period with &&)
        where (state in ('requested', 'approved', 'checked_in', 'planned', 'under_way'))
    );
    create index instrument_reservations_requester on instrument_reservations (requester_id, lower(period));
    create index instrument_reservations_instrument on instrument_reservations (instrument_id, lower(period));
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop table if exists instrument_reservations');
  // btree_gist stays: other objects of the database may use it, and it changes nothing by being there.
}
