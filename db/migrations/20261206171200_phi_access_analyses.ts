import type { Knex } from 'knex';
import { changePhiAccessKinds } from './phi-access-kinds';

/** Reading a result value discloses PHI: a sample's analyses, and one analysis, are disclosures of their own kinds. */
export async function up(knex: Knex): Promise<void> {
  await changePhiAccessKinds(knex, { add: ['analysis', 'analysis_list'] });
}

export async function down(knex: Knex): Promise<void> {
  await changePhiAccessKinds(knex, { remove: ['analysis', 'analysis_list'] });
}
