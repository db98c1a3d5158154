import type { Knex } from 'knex';

/**
 * Notifications on the channels a lab uses. Each person chooses the channels of their normal notices (and gives a
 * Slack incoming-webhook URL and a phone number for SMS); a notice names its template (kind and version), its
 * priority and the IDs of what it is about, never its words; each delivery on each channel is one row, so a
 * channel failing is recorded without touching the others; an urgent notice climbs its escalation chain one step
 * at a time until someone acknowledges it.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table notification_preferences (
      user_id uuid primary key references users(id) on delete cascade,
      channels text[] not null default '{email,in_app}'
        check (channels <@ array['email', 'in_app', 'slack', 'sms']::text[]),
      slack_webhook_url text,
      phone_number text check (phone_number ~ '^\\+[1-9][0-9]{6,14}$'),
      updated_at timestamptz not null default now(),
      updated_by uuid references users(id)
    );

    create table notices (
      id uuid primary key default gen_random_uuid(),
      idempotency_key text not null unique,
      kind text not null,
      template_version integer not null check (template_version > 0),
      priority text not null check (priority in ('urgent', 'normal', 'digest')),
      subject_type text not null,
      subject_id text not null,
      facts jsonb not null default '{}',
      link text,
      state text not null default 'open' check (state in ('open', 'acknowledged', 'delivered', 'unanswered')),
      step integer not null default 0,
      acknowledged_by uuid references users(id),
      acknowledged_at timestamptz,
      created_at timestamptz not null default now()
    );
    create index notices_open on notices (state) where state = 'open';

    -- The people of each escalation step, as they were resolved when the step began.
    create table notice_recipients (
      notice_id uuid not null references notices(id) on delete cascade,
      user_id uuid not null references users(id),
      step integer not null,
      created_at timestamptz not null default now(),
      primary key (notice_id, user_id)
    );

    create table notice_deliveries (
      notice_id uuid not null references notices(id) on delete cascade,
      user_id uuid not null references users(id),
      channel text not null check (channel in ('email', 'in_app', 'slack', 'sms', 'digest')),
      state text not null default 'pending' check (state in ('pending', 'sent', 'failed', 'skipped')),
      attempts integer not null default 0,
      error text,
      provider_id text,
      updated_at timestamptz not null default now(),
      sent_at timestamptz,
      primary key (notice_id, user_id, channel)
    );
    create index notice_deliveries_digest on notice_deliveries (user_id) where channel = 'digest' and state = 'pending';
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop table if exists notice_deliveries, notice_recipients, notices, notification_preferences cascade');
}
