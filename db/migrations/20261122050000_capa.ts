import type { Knex } from 'knex';

/**
 * CAPA: numbers from one Postgres sequence per year (CAPA-2026-0007), and the projection of each CAPA run that
 * lists, filters and the overdue view read. The run is the system of record for the process; these rows follow it.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    -- The year's sequence is created on first use; two first uses at once both end up with the one sequence.
    create function next_capa_number(year integer) returns text language plpgsql as $$
    declare
      seq text := format('capa_number_seq_%s', year);
      n bigint;
    begin
      begin
        execute format('create sequence if not exists %I', seq);
      exception when unique_violation or duplicate_table then
        null;
      end;
      execute format('select nextval(%L)', seq) into n;
      return format('CAPA-%s-%s', year, lpad(n::text, 4, '0'));
    end $$;

    create table capas (
      number text primary key check (number ~ '^CAPA-[0-9]{4}-[0-9]{4,}$'),
      workflow_id text not null unique,
      title text not null,
      stage text not null check (stage in ('initiated', 'triage', 'containment', 'investigation', 'plan_approval',
        'implementation', 'effectiveness_wait', 'effectiveness_review', 'closed', 'cancelled')),
      outcome text check (outcome in ('effective', 'unfounded', 'merged')),
      round integer not null default 1,
      risk_severity integer check (risk_severity between 1 and 5),
      risk_occurrence integer check (risk_occurrence between 1 and 5),
      risk_score integer,
      risk_level text check (risk_level in ('low', 'medium', 'high')),
      owner text,
      owner_user_id uuid references users(id),
      assignees text[] not null default '{}',
      due_at timestamptz,
      merged_into text,
      initiated_by text not null,
      initiated_at timestamptz not null default now(),
      closed_at timestamptz,
      updated_at timestamptz not null default now(),
      -- The run's state revision this row reflects: a late write of an older revision changes nothing.
      rev integer not null default 0
    );
    create index capas_stage on capas (stage);
    create index capas_owner on capas (owner_user_id);
    create index capas_due on capas (due_at) where stage not in ('closed', 'cancelled');

    create table capa_sources (
      capa_number text not null references capas(number),
      source_type text not null,
      source_id text not null,
      linked_by text not null,
      linked_at timestamptz not null default now(),
      primary key (capa_number, source_type, source_id)
    );
    create index capa_sources_source on capa_sources (source_type, source_id);

    create table capa_actions (
      capa_number text not null references capas(number),
      round integer not null,
      action_id text not null,
      type text not null check (type in ('correction', 'corrective', 'preventive')),
      description text not null,
      owner text not null,
      owner_user_id uuid references users(id),
      due_at timestamptz not null,
      state text not null check (state in ('open', 'done', 'superseded')),
      extensions integer not null default 0,
      completed_by text,
      completed_at timestamptz,
      evidence jsonb,
      primary key (capa_number, round, action_id)
    );
    create index capa_actions_open_owner on capa_actions (owner_user_id) where state = 'open';

    -- What people recorded at each step (containment, investigation, plan, effectiveness, closure), as submitted.
    create table capa_records (
      id bigserial primary key,
      idempotency_key text not null unique,
      capa_number text not null references capas(number),
      round integer not null,
      kind text not null,
      body jsonb not null,
      recorded_by text not null,
      recorded_at timestamptz not null default now()
    );
    create index capa_records_capa on capa_records (capa_number, id);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop table if exists capa_records, capa_actions, capa_sources, capas;
    drop function if exists next_capa_number(integer);
  `);
}
