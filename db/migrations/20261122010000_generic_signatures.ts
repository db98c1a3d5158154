import type { Knex } from 'knex';

/** Electronic signatures serve every process (documents, CAPA plans and closures, deviations), not documents only. */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table signatures alter column document_version_id drop not null;
    alter table signatures add column entity_type text;
    alter table signatures add column entity_id text;
    update signatures s set entity_type = 'document', entity_id = d.number
      from document_versions v join documents d on d.id = v.document_id
      where v.id = s.document_version_id;
    alter table signatures alter column entity_type set not null;
    alter table signatures alter column entity_id set not null;
    create index signatures_entity on signatures (entity_type, entity_id, signed_at);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop index signatures_entity;
    alter table signatures drop column entity_id, drop column entity_type;
    alter table signatures alter column document_version_id set not null;
  `);
}
