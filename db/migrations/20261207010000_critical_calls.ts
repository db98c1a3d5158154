import type { Knex } from 'knex';
import { changePhiAccessKinds } from './phi-access-kinds';

/**
 * Critical-value calls: the requisition's ordering provider (a clinician of labflow's), one call per critical
 * analysis with its state and escalation, the attempts (write-once: who called, whom, when by the database's clock,
 * the outcome, the read-back and the grant that proved the caller), and the requests the API stages for an attempt
 * (what the caller typed, kept out of the run's history until the recording step reads it).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table samples add column ordering_provider_id uuid references users(id);

    create table critical_calls (
      id uuid primary key default gen_random_uuid(),
      workflow_id text not null unique,
      analysis_id uuid not null unique references analyses(id),
      sample_id uuid not null references samples(id),
      accession text not null,
      test_code text not null,
      entry_id uuid not null references analysis_entries(id),
      flag text not null check (flag in ('critical_low', 'critical_high')),
      ordering_provider_id uuid references users(id),
      state text not null default 'calling' check (state in ('calling', 'escalated', 'notified')),
      max_attempts integer not null check (max_attempts >= 1),
      deadline_at timestamptz not null,
      opened_at timestamptz not null default now(),
      escalated_at timestamptz,
      escalation_reason text check (escalation_reason in ('attempts', 'deadline', 'no_ordering_provider')),
      notified_at timestamptz,
      confirmed_attempt_id uuid,
      check ((escalated_at is null) = (escalation_reason is null)),
      check ((state = 'notified') = (notified_at is not null))
    );
    create index critical_calls_open on critical_calls (opened_at, id) where state <> 'notified';

    create table critical_call_requests (
      id uuid primary key default gen_random_uuid(),
      call_id uuid not null references critical_calls(id),
      request_id text not null check (char_length(request_id) between 1 and 100),
      requested_by uuid not null references users(id),
      called_user_id uuid references users(id),
      called_name text check (char_length(called_name) between 1 and 200),
      reported_outcome text not null check (reported_outcome in ('CONFIRMED', 'REACHED_NO_READBACK', 'UNABLE_TO_REACH')),
      read_back text check (char_length(read_back) <= 100),
      note text check (char_length(note) <= 1000),
      created_at timestamptz not null default now(),
      check ((called_user_id is null) <> (called_name is null))
    );

    create table critical_call_attempts (
      id uuid primary key default gen_random_uuid(),
      call_id uuid not null references critical_calls(id),
      seq integer not null check (seq >= 1),
      request_id text not null,
      called_by uuid not null references users(id),
      called_by_name text not null,
      called_kind text not null check (called_kind in ('ordering_provider', 'other')),
      called_user_id uuid references users(id),
      called_name text not null,
      outcome text not null check (outcome in ('CONFIRMED', 'REACHED_NO_READBACK', 'UNABLE_TO_REACH')),
      reported_outcome text not null check (reported_outcome in ('CONFIRMED', 'REACHED_NO_READBACK', 'UNABLE_TO_REACH')),
      entry_id uuid not null references analysis_entries(id),
      read_back text,
      read_back_matches boolean,
      note text,
      after_escalation boolean not null,
      grant_id text not null,
      attempted_at timestamptz not null default now(),
      unique (call_id, seq),
      unique (call_id, request_id),
      check (outcome <> 'CONFIRMED' or (reported_outcome = 'CONFIRMED' and read_back_matches))
    );

    create trigger critical_call_attempts_append_only before update or delete on critical_call_attempts
      for each row execute function append_only_refuse_change();
    create trigger critical_call_attempts_no_truncate before truncate on critical_call_attempts
      for each statement execute function append_only_refuse_change();
  `);
  await changePhiAccessKinds(knex, { add: ['critical_call'] });
}

export async function down(knex: Knex): Promise<void> {
  await changePhiAccessKinds(knex, { remove: ['critical_call'] });
  await knex.raw(`
    drop table if exists critical_call_attempts;
    drop table if exists critical_call_requests;
    drop table if exists critical_calls;
    alter table samples drop column if exists ordering_provider_id;
  `);
}
