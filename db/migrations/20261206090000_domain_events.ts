import type { Knex } from 'knex';

/**
 * Domain events (written in the transaction of the business change, beside its audit event) and the outbound
 * webhook subscriptions that receive them. An event's seq is taken under the audit trail's transaction lock, so
 * seq order is commit order: a reader that has seen seq n will never later find a committed event below n.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table domain_events (
      seq bigint primary key,
      id uuid not null unique default gen_random_uuid(),
      type text not null,
      version integer not null check (version > 0),
      entity_type text not null,
      entity_id text not null,
      data jsonb not null,
      occurred_at timestamptz not null default now()
    );
    create index domain_events_type_seq on domain_events (type, seq);
    create sequence domain_events_seq;

    create function domain_events_order() returns trigger language plpgsql as $$
    begin
      perform pg_advisory_xact_lock(hashtext('labflow.audit_events'));
      new.seq := nextval('domain_events_seq');
      new.occurred_at := clock_timestamp();
      return new;
    end $$;
    create trigger domain_events_order before insert on domain_events
      for each row execute function domain_events_order();

    create function domain_events_refuse_change() returns trigger language plpgsql as $$
    begin
      raise exception 'domain events are append-only';
    end $$;
    create trigger domain_events_append_only before update or delete on domain_events
      for each row execute function domain_events_refuse_change();
    create trigger domain_events_no_truncate before truncate on domain_events
      for each statement execute function domain_events_refuse_change();

    create function domain_events_notify() returns trigger language plpgsql as $$
    begin
      perform pg_notify('labflow_domain_events', new.type);
      return null;
    end $$;
    create trigger domain_events_notify after insert on domain_events
      for each row execute function domain_events_notify();

    create table webhook_subscriptions (
      id uuid primary key default gen_random_uuid(),
      url text not null,
      event_types text[] not null check (cardinality(event_types) > 0),
      description text,
      secret text not null,
      previous_secret text,
      previous_secret_expires_at timestamptz,
      state text not null default 'enabled' check (state in ('enabled', 'disabled', 'deleted')),
      disabled_reason text,
      failing_since timestamptz,
      delivered_through bigint not null default 0,
      created_by text not null,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );

    create table webhook_deliveries (
      subscription_id uuid not null references webhook_subscriptions (id),
      event_seq bigint not null references domain_events (seq),
      state text not null check (state in ('failing', 'delivered', 'dead', 'redeliver')),
      attempts integer not null default 0,
      last_status integer,
      last_error text,
      updated_at timestamptz not null default now(),
      primary key (subscription_id, event_seq)
    );
    create index webhook_deliveries_state on webhook_deliveries (subscription_id, state, event_seq);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop table webhook_deliveries;
    drop table webhook_subscriptions;
    drop table domain_events;
    drop sequence domain_events_seq;
    drop function domain_events_order, domain_events_refuse_change, domain_events_notify;
  `);
}
