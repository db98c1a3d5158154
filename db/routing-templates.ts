import type { Knex } from 'knex';
import type { Actor, Role } from '../common/roles';
import type { DocType, RoutingTemplate, TemplateStage } from '../common/routing-templates';
import { appendAudit } from './audit';
import { diff } from './field-changes';
import type { Db } from './knex';

interface TemplateRow {
  doc_type: DocType;
  stages: TemplateStage[];
  document_control_final: boolean;
  updated_at: Date;
  updated_by: string;
}

const toTemplate = (row: TemplateRow) => ({
  docType: row.doc_type,
  stages: row.stages,
  documentControlFinal: row.document_control_final,
  updatedAt: row.updated_at,
  updatedBy: row.updated_by,
});

export async function listRoutingTemplates(db: Db) {
  return ((await db('routing_templates').orderBy('doc_type').select('*')) as TemplateRow[]).map(toTemplate);
}

export async function findRoutingTemplate(db: Db | Knex.Transaction, docType: string): Promise<RoutingTemplate | undefined> {
  const row = (await db('routing_templates').where({ doc_type: docType }).first()) as TemplateRow | undefined;
  return row && toTemplate(row);
}

/** Replaces a document type's template; the audit event records the old and new stages and final-stage rule. */
export async function saveRoutingTemplate(db: Db, actor: Actor, template: RoutingTemplate) {
  return db.transaction(async (trx) => {
    const before = (await trx('routing_templates').where({ doc_type: template.docType }).forNoKeyUpdate().first()) as TemplateRow | undefined;
    const values = { stages: JSON.stringify(template.stages), document_control_final: template.documentControlFinal };
    const [after] = (await trx('routing_templates')
      .insert({ doc_type: template.docType, ...values, updated_by: actor.username })
      .onConflict('doc_type')
      .merge({ ...values, updated_at: trx.fn.now(), updated_by: actor.username })
      .returning('*')) as TemplateRow[];
    const fields = ['stages', 'document_control_final'];
    const changes = diff(before ?? null, after, { fields });
    if (changes.length) {
      await appendAudit(trx, {
        actorId: actor.userId,
        actor: actor.username,
        action: before ? 'routing_template.updated' : 'routing_template.created',
        entityType: 'routing_template',
        entityId: template.docType,
        details: { changes },
      });
    }
    return { template: toTemplate(after), changes };
  });
}

/** The roles of these users as Postgres holds them now, active users only. */
export async function rolesOfUsers(db: Db, userIds: string[]): Promise<Map<string, Role[]>> {
  if (!userIds.length) return new Map();
  const rows: { id: string; roles: Role[] }[] = await db('users').whereIn('id', userIds).where({ active: true }).select('id', 'roles');
  return new Map(rows.map((row) => [row.id, row.roles]));
}
