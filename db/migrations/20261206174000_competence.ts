import type { Knex } from 'knex';

/**
 * Competence and authorisation (ISO/IEC 17025 6.2.5–6.2.6, CLIA 493.1451): competency assessments of a person for
 * an activity (method, assessor, outcome, next due), authorisations of a person for an activity and scope (granted
 * with an electronic signature, valid for a period, revoked with a reason), and which gated activities require
 * either. Assessments and authorisations are records with signatures or assessors: never deleted.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table gate_activity_requirements (
      activity text primary key check (activity ~ '^[a-z_]+(\\.[a-z_]+){1,3}$'),
      competency boolean not null default false,
      authorisation boolean not null default false,
      set_at timestamptz not null default now(),
      set_by text not null
    );

    create table competency_assessments (
      id uuid primary key default gen_random_uuid(),
      user_id uuid not null references users(id),
      activity text not null check (activity ~ '^[a-z_]+(\\.[a-z_]+){1,3}$'),
      scope text not null default '*' check (scope ~ '^(\\*|[A-Za-z0-9][A-Za-z0-9._-]{0,63})$'),
      method text not null check (method in ('direct_observation', 'monitoring_records', 'review_of_results',
        'blind_sample', 'proficiency_testing', 'problem_solving', 'written_test')),
      outcome text not null check (outcome in ('competent', 'not_competent')),
      assessed_at timestamptz not null,
      next_due_at timestamptz,
      assessor_id uuid not null references users(id),
      assessor text not null,
      evidence text check (char_length(evidence) <= 2000),
      recorded_at timestamptz not null default now(),
      check (assessor_id <> user_id),
      check ((outcome = 'competent') = (next_due_at is not null)),
      check (next_due_at is null or next_due_at > assessed_at)
    );
    create index competency_assessments_person on competency_assessments (user_id, activity, scope, assessed_at desc);

    create table authorisations (
      id uuid primary key default gen_random_uuid(),
      user_id uuid not null references users(id),
      activity text not null check (activity ~ '^[a-z_]+(\\.[a-z_]+){1,3}$'),
      scope text not null default '*' check (scope ~ '^(\\*|[A-Za-z0-9][A-Za-z0-9._-]{0,63})$'),
      valid_from timestamptz not null,
      valid_until timestamptz,
      granted_by_id uuid not null references users(id),
      granted_by text not null,
      granted_at timestamptz not null default now(),
      signature_id uuid not null references signatures(id),
      ended_at timestamptz,
      ended_by text,
      ended_because text check (ended_because in ('revoked', 'renewed')),
      end_reason text check (char_length(end_reason) <= 500),
      check (valid_until is null or valid_until > valid_from),
      check (granted_by_id <> user_id),
      check ((ended_at is null) = (ended_because is null) and (ended_at is null) = (ended_by is null))
    );
    -- one standing authorisation per person, activity and scope; a renewal ends the one before
    create unique index authorisations_standing on authorisations (user_id, activity, scope) where ended_at is null;

    -- authorisations are signed records: ended, never deleted; an assessment is never changed
    create trigger authorisations_no_delete before delete on authorisations
      for each row execute function append_only_refuse_change();
    create trigger authorisations_no_truncate before truncate on authorisations
      for each statement execute function append_only_refuse_change();
    create trigger competency_assessments_append_only before update or delete on competency_assessments
      for each row execute function append_only_refuse_change();
    create trigger competency_assessments_no_truncate before truncate on competency_assessments
      for each statement execute function append_only_refuse_change();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop table if exists authorisations;
    drop table if exists competency_assessments;
    drop table if exists gate_activity_requirements;
  `);
}
