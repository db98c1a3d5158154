import type { Knex } from 'knex';

/**
 * CAPA numbers come from one sequence per year, created on first use. The application role may not create
 * objects, so the function that hands out numbers runs with its owner's rights (the migration owner), with a
 * fixed search path so no caller can put its own objects in the way.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`alter function next_capa_number(integer) security definer set search_path = public, pg_temp`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`alter function next_capa_number(integer) security invoker reset search_path`);
}
