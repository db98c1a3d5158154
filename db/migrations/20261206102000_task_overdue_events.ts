import type { Knex } from 'knex';

/** A task's first finding as overdue is marked once (kind `overdue`), so its `task.overdue` event is published once. */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table task_reminders drop constraint task_reminders_kind_check;
    alter table task_reminders add constraint task_reminders_kind_check check (kind in ('reminder', 'escalation', 'overdue'));
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    delete from task_reminders where kind = 'overdue';
    alter table task_reminders drop constraint task_reminders_kind_check;
    alter table task_reminders add constraint task_reminders_kind_check check (kind in ('reminder', 'escalation'));
  `);
}
