import type { Knex } from 'knex';

/**
 * Bulk export files are kept for BULK_EXPORT_RETENTION after they were written; then the file is deleted and the
 * export is marked expired (its row, who asked and what it held stay, as the audit trail does).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table bulk_exports drop constraint bulk_exports_state_check;
    alter table bulk_exports drop constraint bulk_exports_check;
    alter table bulk_exports add column expired_at timestamptz;
    alter table bulk_exports add constraint bulk_exports_state_check check (state in ('running', 'completed', 'failed', 'expired'));
    alter table bulk_exports add constraint bulk_exports_check check ((state = 'completed') = (file is not null));
    alter table bulk_exports add constraint bulk_exports_expired_check check ((state = 'expired') = (expired_at is not null));
    create index bulk_exports_completed on bulk_exports (finished_at) where state = 'completed';
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop index if exists bulk_exports_completed;
    alter table bulk_exports drop constraint bulk_exports_expired_check;
    delete from bulk_exports where state = 'expired';
    alter table bulk_exports drop constraint bulk_exports_state_check;
    alter table bulk_exports add constraint bulk_exports_state_check check (state in ('running', 'completed', 'failed'));
    alter table bulk_exports drop column expired_at;
  `);
}
