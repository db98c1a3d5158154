import type { Knex } from 'knex';

/**
 * Training on every effective version. A requirement per document (the roles that read it, the time they have,
 * what a revision means, the grace policy); the requirement and impact document control proposed when submitting a
 * version, kept on the version until it becomes effective; one assignment per person and version, closed by their
 * own read-and-understood signature; and the controlled documents that govern each gated activity.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table training_requirements (
      document_id uuid primary key references documents(id),
      roles text[] not null check (cardinality(roles) > 0),
      due text not null,
      reminder_before text not null,
      retrain_on_revision boolean not null default true,
      grace text not null default 'until_due' check (grace in ('until_due', 'none')),
      active boolean not null default true,
      set_in_version integer not null,
      updated_at timestamptz not null default now(),
      updated_by text not null
    );

    alter table document_versions
      add column training_requirement jsonb,
      add column training_impact text check (training_impact in ('retrain', 'no_retraining', 'retire'));

    create table training_assignments (
      id uuid primary key default gen_random_uuid(),
      workflow_id text not null unique,
      user_id uuid not null references users(id),
      document_id uuid not null references documents(id),
      document_number text not null,
      version integer not null check (version > 0),
      version_id uuid not null references document_versions(id),
      state text not null default 'assigned' check (state in ('assigned', 'completed', 'superseded', 'cancelled')),
      due_at timestamptz not null,
      assigned_at timestamptz not null default now(),
      closed_at timestamptz,
      ended_because text check (ended_because in ('superseded', 'role_removed', 'user_deactivated', 'requirement_retired')),
      signature_id uuid references signatures(id),
      reminded_at timestamptz,
      escalated_at timestamptz,
      requested_by text not null,
      unique (user_id, version_id),
      check ((state = 'completed') = (signature_id is not null)),
      check ((state in ('superseded', 'cancelled')) = (ended_because is not null))
    );
    create index training_assignments_mine on training_assignments (user_id, state, due_at, id);
    create index training_assignments_document on training_assignments (document_id, version, user_id);

    create table activity_governing_documents (
      activity text not null check (activity ~ '^[a-z_]+(\\.[a-z_]+){1,3}$'),
      document_id uuid not null references documents(id),
      set_at timestamptz not null default now(),
      set_by text not null,
      primary key (activity, document_id)
    );
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop table if exists activity_governing_documents;
    drop table if exists training_assignments;
    alter table document_versions drop column if exists training_impact, drop column if exists training_requirement;
    drop table if exists training_requirements;
  `);
}
