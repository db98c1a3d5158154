import type { AuditTrailRow } from '../../db/audit';

export const EXPORT_FORMATS = ['pdf', 'csv', 'json'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** The record kinds an inspector may ask a copy of, and the audit trail each one's copy carries. */
export type ExportKind = 'document_version' | 'capa' | 'sample' | 'summary';

/** A signature as 21 CFR 11.50 asks it shown: the signer's printed name, the UTC date and time, the meaning. */
export interface ExportedSignature {
  printedName: string;
  username: string;
  signedAt: string;
  meaning: string;
  stage: string | null;
  contentHash: string;
  void: boolean;
  voidedAt: string | null;
  voidReason: string | null;
  /** The record signed, on a sample's copy: the sample, one of its analyses (every retest) or report versions. */
  entityType?: string;
  entityId?: string;
}

export interface ExportedCustodyEvent {
  at: string;
  piece: string;
  event: string;
  actor: string;
  from: string | null;
  to: string | null;
  condition: string | null;
}

export interface ExportedTrailEvent {
  seq: number;
  at: string;
  actor: string;
  action: string;
  /** The record the event is recorded on: the exported record, or one kept on its trail (a sample's analysis). */
  entityType: string;
  entityId: string;
  details: Record<string, unknown>;
  hash: string;
}

/** Everything one export shows, whatever its format: the three renderers read only this. */
export interface ExportedRecord {
  kind: ExportKind;
  title: string;
  /** Where the record's audit trail is kept. */
  entityType: string;
  entityId: string;
  state: string;
  fields: { label: string; value: string }[];
  content: string | null;
  signatures: ExportedSignature[];
  custody: ExportedCustodyEvent[] | null;
  trail: ExportedTrailEvent[];
  generatedAt: string;
  generatedBy: { username: string; printedName: string };
}

type RecordRef = Pick<ExportedRecord, 'entityType' | 'entityId'>;

/** The record an event or signature is on, when that is not the exported record (`analysis analysis:<accession>:<test>`). */
export const otherRecord = (record: RecordRef, on: Partial<RecordRef>): string | null =>
  !on.entityType || !on.entityId || (on.entityType === record.entityType && on.entityId === record.entityId)
    ? null
    : `${on.entityType} ${on.entityId}`;

/** How a line names what happened: the action (or meaning), and the record it is on when that is not the exported record. */
const onRecord = (record: RecordRef, on: Partial<RecordRef>, what: string): string => {
  const other = otherRecord(record, on);
  return other ? `${what} on ${other}` : what;
};

export const trailWhat = (record: RecordRef, e: ExportedTrailEvent): string => onRecord(record, e, e.action);

export const signatureWhat = (record: RecordRef, s: ExportedSignature): string => onRecord(record, s, s.meaning);

export const isoUtc = (value: Date | string | null | undefined): string | null =>
  value === null || value === undefined ? null : new Date(value).toISOString();

/** A field's value as text: dates in UTC, lists and objects as JSON, nothing as an empty string. */
export function fieldText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

export const fields = (entries: [string, unknown][]) => entries.map(([label, value]) => ({ label, value: fieldText(value) }));

export function trailEvents(rows: AuditTrailRow[]): ExportedTrailEvent[] {
  return rows.map((r) => ({
    seq: r.seq,
    at: new Date(r.occurred_at).toISOString(),
    actor: r.actor,
    action: r.action,
    entityType: r.entity_type,
    entityId: r.entity_id,
    details: r.details,
    hash: r.hash,
  }));
}

interface SignatureRow {
  printed_name: string;
  username: string;
  signed_at: Date | string;
  meaning: string;
  stage_name?: string | null;
  content_hash: string;
  void: boolean;
  voided_at: Date | string | null;
  void_reason: string | null;
  entity_type?: string;
  entity_id?: string;
}

export function signaturesOf(rows: SignatureRow[]): ExportedSignature[] {
  return rows.map((s) => ({
    printedName: s.printed_name,
    username: s.username,
    signedAt: isoUtc(s.signed_at)!,
    meaning: s.meaning,
    stage: s.stage_name ?? null,
    contentHash: s.content_hash,
    void: Boolean(s.void),
    voidedAt: isoUtc(s.voided_at),
    voidReason: s.void_reason ?? null,
    ...(s.entity_type && s.entity_id ? { entityType: s.entity_type, entityId: s.entity_id } : {}),
  }));
}

/** "2026-12-06 09:10:00 UTC": how a printed copy shows a moment. */
export const printedUtc = (iso: string) => `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
