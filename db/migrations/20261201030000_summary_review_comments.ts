import type { Knex } from 'knex';

/**
 * A reviewer's comment on a summary waits here until the run accepts the review, as an edited text waits in
 * summary_edits: the run names it by ID, so free text about a patient never enters the run's history. The accepted
 * comment is copied to summaries.review_comment; deleting the patient removes both (cascade).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table summary_review_comments (
      id uuid primary key default gen_random_uuid(),
      summary_id uuid not null references summaries(id) on delete cascade,
      text text not null,
      author_id uuid not null references users(id),
      created_at timestamptz not null default now()
    );
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop table if exists summary_review_comments');
}
