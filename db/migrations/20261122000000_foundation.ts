import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table users (
      id uuid primary key default gen_random_uuid(),
      username text not null unique check (username ~ '^[a-z0-9._-]{2,64}$'),
      printed_name text not null,
      email text not null,
      roles text[] not null default '{}',
      password_hash text,
      active boolean not null default true,
      signing_failures integer not null default 0,
      signing_failure_window_start timestamptz,
      signing_locked_until timestamptz,
      created_at timestamptz not null default now()
    );

    create table api_keys (
      id uuid primary key default gen_random_uuid(),
      user_id uuid not null references users(id) on delete cascade,
      prefix text not null unique,
      key_hash text not null,
      label text not null default '',
      created_at timestamptz not null default now(),
      last_used_at timestamptz,
      revoked_at timestamptz
    );

    -- Append-only, hash-chained audit trail. seq is assigned under a lock inside the insert trigger, so the
    -- chain's order is the order in which events committed.
    create table audit_events (
      seq bigint primary key,
      occurred_at timestamptz not null default now(),
      actor_id uuid,
      actor text not null,
      action text not null,
      entity_type text not null,
      entity_id text not null,
      details jsonb not null default '{}',
      idempotency_key text unique,
      prev_hash text not null,
      hash text not null
    );
    create index audit_events_entity on audit_events (entity_type, entity_id, seq);

    create function audit_event_digest(prev_hash text, e audit_events) returns text
    language sql immutable as $$
      select encode(sha256(convert_to(
        prev_hash || '|' || e.seq::text || '|' ||
        to_char(e.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '|' ||
        coalesce(e.actor_id::text, '') || '|' || e.actor || '|' || e.action || '|' ||
        e.entity_type || '|' || e.entity_id || '|' || e.details::text || '|' || coalesce(e.idempotency_key, ''),
        'UTF8')), 'hex')
    $$;

    create function audit_events_chain() returns trigger language plpgsql as $$
    declare
      last audit_events;
    begin
      perform pg_advisory_xact_lock(hashtext('labflow.audit_events'));
      select * into last from audit_events order by seq desc limit 1;
      new.seq := coalesce(last.seq, 0) + 1;
      new.prev_hash := coalesce(last.hash, repeat('0', 64));
      new.occurred_at := clock_timestamp();
      new.hash := audit_event_digest(new.prev_hash, new);
      return new;
    end $$;
    create trigger audit_events_chain before insert on audit_events
      for each row execute function audit_events_chain();

    create function audit_events_refuse_change() returns trigger language plpgsql as $$
    begin
      raise exception 'audit_events is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
    end $$;
    create trigger audit_events_append_only before update or delete on audit_events
      for each row execute function audit_events_refuse_change();
    create trigger audit_events_no_truncate before truncate on audit_events
      for each statement execute function audit_events_refuse_change();

    create table tasks (
      id uuid primary key default gen_random_uuid(),
      task_key text not null unique,
      workflow_id text not null,
      entity_type text not null,
      entity_id text not null,
      kind text not null,
      title text not null,
      assignee_user_id uuid references users(id),
      assignee_role text,
      state text not null default 'open' check (state in ('open', 'done', 'reassigned', 'cancelled')),
      due_at timestamptz,
      created_at timestamptz not null default now(),
      closed_at timestamptz,
      closed_by uuid references users(id),
      check ((assignee_user_id is null) <> (assignee_role is null))
    );
    create index tasks_open_user on tasks (assignee_user_id) where state = 'open';
    create index tasks_open_role on tasks (assignee_role) where state = 'open';
    create index tasks_workflow on tasks (workflow_id);

    create table notifications (
      id uuid primary key default gen_random_uuid(),
      idempotency_key text not null,
      user_id uuid not null references users(id) on delete cascade,
      kind text not null,
      title text not null,
      body text not null,
      link text,
      created_at timestamptz not null default now(),
      read_at timestamptz,
      unique (idempotency_key, user_id)
    );
    create index notifications_user on notifications (user_id, created_at desc);

    -- Transactional outbox: an email is recorded with the change that causes it and sent afterwards, once.
    create table email_outbox (
      id uuid primary key default gen_random_uuid(),
      idempotency_key text not null unique,
      message_id text not null unique,
      to_address text not null,
      subject text not null,
      body text not null,
      state text not null default 'pending' check (state in ('pending', 'sent')),
      created_at timestamptz not null default now(),
      sent_at timestamptz
    );

    create sequence document_number_seq;
    create table documents (
      id uuid primary key default gen_random_uuid(),
      number text not null unique,
      title text not null,
      doc_type text not null,
      owner_id uuid not null references users(id),
      created_at timestamptz not null default now()
    );

    create table document_contents (
      hash text primary key check (hash ~ '^[0-9a-f]{64}$'),
      content text not null,
      created_at timestamptz not null default now()
    );

    create table document_versions (
      id uuid primary key default gen_random_uuid(),
      document_id uuid not null references documents(id),
      version integer not null check (version > 0),
      content_hash text not null references document_contents(hash),
      change_summary text not null default '',
      author_id uuid not null references users(id),
      state text not null default 'draft' check (state in
        ('draft', 'in_review', 'changes_requested', 'approved', 'effective', 'superseded', 'obsolete', 'rejected', 'withdrawn')),
      workflow_id text unique,
      round integer not null default 0,
      stage_name text,
      assignees text[] not null default '{}',
      due_at timestamptz,
      effective_date timestamptz,
      submitted_at timestamptz,
      approved_at timestamptz,
      effective_at timestamptz,
      closed_at timestamptz,
      next_review_at timestamptz,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      unique (document_id, version)
    );
    -- One open revision and one effective version per document, enforced by the database.
    create unique index document_versions_one_open on document_versions (document_id)
      where state in ('draft', 'in_review', 'changes_requested', 'approved');
    create unique index document_versions_one_effective on document_versions (document_id) where state = 'effective';
    create index document_versions_state on document_versions (state);

    create table signatures (
      id uuid primary key default gen_random_uuid(),
      idempotency_key text not null unique,
      document_version_id uuid not null references document_versions(id),
      workflow_id text not null,
      round integer not null,
      stage_index integer not null,
      stage_name text not null,
      user_id uuid not null references users(id),
      username text not null,
      printed_name text not null,
      meaning text not null,
      signed_at timestamptz not null,
      content_hash text not null,
      void boolean not null default false,
      voided_at timestamptz,
      void_reason text
    );
    create index signatures_version on signatures (document_version_id, round);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop table if exists signatures, document_versions, document_contents, documents, email_outbox,
      notifications, tasks, audit_events, api_keys, users cascade;
    drop sequence if exists document_number_seq;
    drop function if exists audit_events_chain, audit_events_refuse_change, audit_event_digest;
  `);
}
