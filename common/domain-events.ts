import { z } from 'zod';

/**
 * The domain events labflow publishes, each with a versioned schema. They carry identifiers and states only:
 * never a patient's name, a note, a result or free text a person typed (a reason, a comment, a title).
 */
const id = z.string().min(1).max(200);

/** A task event: which task, of what, and whose; `task.overdue` always has a due date. */
const taskEvent = z.strictObject({
  taskKey: id,
  kind: z.string().max(80),
  entityType: z.string().max(40),
  entityId: id,
  assigneeUserId: z.string().nullable(),
  assigneeRole: z.string().nullable(),
});

export const DOMAIN_EVENT_SCHEMAS = {
  'document.effective': {
    version: 1,
    schema: z.strictObject({ documentNumber: id, version: z.number().int(), supersedesVersion: z.number().int().nullable() }),
  },
  'capa.closed': {
    version: 1,
    schema: z.strictObject({ capaNumber: id, outcome: z.string().max(40).nullable() }),
  },
  'sample.rejected': {
    version: 1,
    schema: z.strictObject({ accession: id, rejectionCode: z.string().max(40).nullable() }),
  },
  'summary.approved': {
    version: 1,
    schema: z.strictObject({ patientId: id, summaryId: id, round: z.number().int().nullable() }),
  },
  'task.assigned': { version: 1, schema: taskEvent.extend({ dueAt: z.string().nullable() }) },
  'task.overdue': { version: 1, schema: taskEvent.extend({ dueAt: z.string() }) },
  'backup.verified': {
    version: 1,
    schema: z.strictObject({ backupId: id, encrypted: z.boolean() }),
  },
  'report.released': {
    version: 1,
    schema: z.strictObject({
      accession: id,
      reportId: id,
      version: z.number().int(),
      correctsVersion: z.number().int().nullable(),
      pdfSha256: z.string().regex(/^[0-9a-f]{64}$/),
    }),
  },
} as const;

export type DomainEventType = keyof typeof DOMAIN_EVENT_SCHEMAS;
export const DOMAIN_EVENT_TYPES = Object.keys(DOMAIN_EVENT_SCHEMAS) as DomainEventType[];
export const domainEventType = z.enum(DOMAIN_EVENT_TYPES as [DomainEventType, ...DomainEventType[]]);

export interface DomainEventInput {
  type: DomainEventType;
  entityType: string;
  entityId: string;
  data: Record<string, unknown>;
}

interface AuditFacts {
  action: string;
  entityType: string;
  entityId: string;
  details: Record<string, unknown>;
}

const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/**
 * The one place that says which audited actions are domain events, and what of the audit event each may carry.
 * appendAudit calls it, so every such change publishes its event in its own transaction without each activity
 * having to remember to.
 */
const FROM_AUDIT: Record<string, (a: AuditFacts) => DomainEventInput> = {
  'document.effective': (a) => ({
    type: 'document.effective',
    entityType: a.entityType,
    entityId: a.entityId,
    data: { documentNumber: a.entityId, version: num(a.details.version) ?? 0, supersedesVersion: num(a.details.supersedes) },
  }),
  'capa.closed': (a) => ({
    type: 'capa.closed',
    entityType: a.entityType,
    entityId: a.entityId,
    data: { capaNumber: a.entityId, outcome: str(a.details.outcome) },
  }),
  'sample.rejected': (a) => ({
    type: 'sample.rejected',
    entityType: a.entityType,
    entityId: a.entityId,
    data: { accession: a.entityId, rejectionCode: str(a.details.code) },
  }),
  'summary.approved': (a) => ({
    type: 'summary.approved',
    entityType: a.entityType,
    entityId: a.entityId,
    data: { patientId: a.entityId, summaryId: str(a.details.summaryId) ?? '', round: num(a.details.round) },
  }),
  'backup.verified': (a) => ({
    type: 'backup.verified',
    entityType: a.entityType,
    entityId: a.entityId,
    data: { backupId: a.entityId, encrypted: a.details.encrypted === true },
  }),
  'report.released': (a) => ({
    type: 'report.released',
    entityType: a.entityType,
    entityId: a.entityId,
    data: {
      accession: str(a.details.accession) ?? '',
      reportId: str(a.details.reportId) ?? '',
      version: num(a.details.version) ?? 0,
      correctsVersion: num(a.details.corrects),
      pdfSha256: str(a.details.pdfSha256) ?? '',
    },
  }),
};

export function domainEventOfAudit(a: AuditFacts): DomainEventInput | null {
  const map = FROM_AUDIT[a.action];
  return map ? map(a) : null;
}

/** Checks an event against its schema; a mismatch is labflow's own bug, so it is thrown, not published. */
export function validDomainEvent(e: DomainEventInput): { version: number; data: Record<string, unknown> } {
  const { version, schema } = DOMAIN_EVENT_SCHEMAS[e.type];
  return { version, data: (schema as z.ZodType<Record<string, unknown>>).parse(e.data) };
}

/** The JSON Schema of every event type, for GET /events/schemas and the docs. */
export function domainEventJsonSchemas(): Record<string, { version: number; schema: unknown }> {
  return Object.fromEntries(
    DOMAIN_EVENT_TYPES.map((t) => [
      t,
      { version: DOMAIN_EVENT_SCHEMAS[t].version, schema: z.toJSONSchema(DOMAIN_EVENT_SCHEMAS[t].schema) },
    ]),
  );
}
