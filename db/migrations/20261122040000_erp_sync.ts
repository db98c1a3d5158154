import type { Knex } from 'knex';

/**
 * The ERP's suppliers, items, purchase orders and receipts as labflow keeps them, the sync's cursors, runs and
 * dead letters, the incoming-inspection hook for sample intake, and the supplier-qualification projection.
 * erp_modified is the ERP's own site-local `modified` text (kept as sent, so it can be sent back exactly);
 * erp_modified_at is the same instant as timestamptz, converted with the site's time zone.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table erp_suppliers (
      name text primary key,
      supplier_name text not null,
      supplier_group text,
      country text,
      disabled boolean not null default false,
      on_hold boolean not null default false,
      hold_type text,
      docstatus smallint not null default 0 check (docstatus in (0, 1, 2)),
      erp_modified text not null,
      erp_modified_at timestamptz not null,
      deleted_at timestamptz,
      synced_at timestamptz not null default now()
    );

    create table erp_items (
      name text primary key,
      item_name text not null,
      item_group text,
      stock_uom text not null,
      inspection_required boolean not null default false,
      disabled boolean not null default false,
      docstatus smallint not null default 0 check (docstatus in (0, 1, 2)),
      erp_modified text not null,
      erp_modified_at timestamptz not null,
      deleted_at timestamptz,
      synced_at timestamptz not null default now()
    );

    create table erp_purchase_orders (
      name text primary key,
      supplier text not null,
      transaction_date date,
      status text,
      docstatus smallint not null check (docstatus in (0, 1, 2)),
      amended_from text,
      superseded_by text,
      grand_total numeric(18, 4),
      currency text,
      erp_modified text not null,
      erp_modified_at timestamptz not null,
      deleted_at timestamptz,
      synced_at timestamptz not null default now()
    );
    create index erp_purchase_orders_supplier on erp_purchase_orders (supplier);

    create table erp_purchase_order_items (
      purchase_order text not null references erp_purchase_orders(name) on delete cascade,
      idx integer not null,
      item_code text not null,
      qty numeric(18, 4) not null,
      rate numeric(18, 4),
      uom text,
      primary key (purchase_order, idx)
    );

    create table erp_purchase_receipts (
      name text primary key,
      supplier text not null,
      posting_date date,
      status text,
      docstatus smallint not null check (docstatus in (0, 1, 2)),
      amended_from text,
      superseded_by text,
      erp_modified text not null,
      erp_modified_at timestamptz not null,
      deleted_at timestamptz,
      synced_at timestamptz not null default now()
    );

    create table erp_purchase_receipt_items (
      purchase_receipt text not null references erp_purchase_receipts(name) on delete cascade,
      idx integer not null,
      item_code text not null,
      qty numeric(18, 4) not null,
      purchase_order text,
      batch_no text,
      primary key (purchase_receipt, idx)
    );

    -- Where sample intake picks up received goods that need incoming inspection (until that process lands,
    -- the rows wait here in state 'pending').
    create table incoming_inspection_hooks (
      purchase_receipt text not null,
      idx integer not null,
      item_code text not null,
      qty numeric(18, 4) not null,
      supplier text not null,
      batch_no text,
      state text not null default 'pending' check (state in ('pending', 'started', 'cancelled')),
      intake_workflow_id text,
      created_at timestamptz not null default now(),
      primary key (purchase_receipt, idx)
    );

    create table erp_sync_cursors (
      entity text primary key,
      cursor_modified text,
      cursor_name text,
      updated_at timestamptz not null default now()
    );

    create table erp_sync_runs (
      id text primary key,
      workflow_id text not null,
      scope text not null,
      mode text not null check (mode in ('incremental', 'reconcile')),
      requested_by text not null,
      state text not null default 'running' check (state in ('running', 'completed', 'failed')),
      counts jsonb not null default '{}',
      drift jsonb,
      error text,
      started_at timestamptz not null default now(),
      finished_at timestamptz
    );
    create index erp_sync_runs_started on erp_sync_runs (started_at desc);

    create table erp_dead_letters (
      id uuid primary key default gen_random_uuid(),
      direction text not null default 'inbound' check (direction in ('inbound', 'outbound')),
      entity text not null,
      erp_name text not null,
      erp_modified text,
      payload jsonb not null default '{}',
      reason text not null,
      error_type text not null,
      state text not null default 'open' check (state in ('open', 'retry_requested', 'resolved', 'discarded')),
      attempts integer not null default 1,
      sync_run_id text,
      first_seen_at timestamptz not null default now(),
      last_seen_at timestamptz not null default now(),
      closed_at timestamptz,
      closed_by text,
      close_reason text
    );
    -- One live dead letter per record: a later refusal of the same record updates it.
    create unique index erp_dead_letters_live on erp_dead_letters (direction, entity, erp_name)
      where state in ('open', 'retry_requested');
    create index erp_dead_letters_state on erp_dead_letters (state, entity);

    create table supplier_qualifications (
      supplier text primary key,
      status text not null check (status in ('pending', 'approved', 'suspended', 'disqualified')),
      workflow_id text not null,
      decided_by text,
      decided_at timestamptz,
      reason text,
      erp_state text not null default 'pending' check (erp_state in ('pending', 'written', 'skipped', 'refused')),
      erp_detail text,
      updated_at timestamptz not null default now()
    );
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop table if exists supplier_qualifications, erp_dead_letters, erp_sync_runs, erp_sync_cursors,
      incoming_inspection_hooks, erp_purchase_receipt_items, erp_purchase_receipts, erp_purchase_order_items,
      erp_purchase_orders, erp_items, erp_suppliers;
  `);
}
