import type { Context } from 'koa';
import type { Actor } from '../../common/roles';
import { appendAudit } from '../../db/audit';
import { recordPhiAccess, type PhiRecordKind } from '../../db/phi-access';
import type { ApiDeps } from '../deps';
import { logPhiRead, phiVia } from '../patient-access';
import { Problem } from '../problem';
import type { ExportedRecord, ExportFormat, ExportKind } from './exported-record';
import { renderCsv } from './render-csv';
import { renderPdf } from './render-pdf';

/** What is asked for and how to judge and read it; the export itself is the same for every kind. */
export interface ExportTarget {
  kind: ExportKind;
  /** Where the record's trail is kept, and so where its export is audited. */
  entityType: string;
  entityId: string;
  /** The record itself when it is kept on another's trail (a summary job on its patient's); else the entity. */
  recordId?: string;
  /**
   * Its copy shows PHI (a patient's identification, a summary of their notes): every export and refusal is a PHI
   * access event too, of this kind, naming these patients (a sample names none: its patient is only its label).
   */
  phi: { kind: PhiRecordKind; patientIds: string[] } | null;
  /** Throws a 403 problem when the actor may not read the record. */
  authorize: (actor: Actor) => void | Promise<void>;
  load: (actor: Actor) => Promise<ExportedRecord>;
}

const MEDIA: Record<ExportFormat, string> = {
  pdf: 'application/pdf',
  csv: 'text/csv; charset=utf-8',
  json: 'application/json; charset=utf-8',
};

/**
 * An accurate and complete copy of a record (21 CFR 11.10(b)): checked, generated, audited, answered. A caller who
 * may not read the record gets 403, nothing is generated, and the attempt is in the record's trail.
 */
export async function exportRecord(deps: ApiDeps, actor: Actor, ctx: Context, target: ExportTarget, format: ExportFormat) {
  const { db } = deps;
  const audited = { actorId: actor.userId, actor: actor.username, entityType: target.entityType, entityId: target.entityId };
  const recordId = target.recordId ? { recordId: target.recordId } : {};
  try {
    await target.authorize(actor);
  } catch (err) {
    if (err instanceof Problem && err.status === 403) {
      await appendAudit(db, { ...audited, action: 'record.export_refused', details: { kind: target.kind, format, ...recordId } });
      if (target.phi) await recordPhiAccess(db, refusedPhiEvent(actor, ctx, { ...target, phi: target.phi }));
    }
    throw err;
  }
  const record = await target.load(actor);
  if (target.phi)
    await logPhiRead(db, actor, phiVia(ctx), { kind: target.phi.kind, patientIds: target.phi.patientIds, recordIds: [target.recordId ?? target.entityId] }, deps.log);
  const body = format === 'pdf' ? await renderPdf(record) : format === 'csv' ? renderCsv(record) : JSON.stringify(record);
  await appendAudit(db, {
    ...audited,
    action: 'record.exported',
    details: { kind: target.kind, format, ...recordId, signatures: record.signatures.length, trailEvents: record.trail.length },
  });
  const name = `${target.kind}-${target.recordId ?? target.entityId}${record.kind === 'document_version' ? `-v${versionOf(record)}` : ''}.${format}`;
  ctx.set('Content-Disposition', `attachment; filename="${name.replace(/[^A-Za-z0-9._-]/g, '_')}"`);
  ctx.set('Cache-Control', 'no-store');
  ctx.type = MEDIA[format];
  ctx.body = body;
}

const versionOf = (record: ExportedRecord) => record.fields.find((f) => f.label === 'Version')?.value ?? '';

function refusedPhiEvent(actor: Actor, ctx: Context, target: ExportTarget & { phi: NonNullable<ExportTarget['phi']> }) {
  return {
    userId: actor.userId,
    username: actor.username,
    kind: target.phi.kind,
    patientIds: target.phi.patientIds,
    recordIds: [target.recordId ?? target.entityId],
    outcome: 'denied' as const,
    ...phiVia(ctx),
  };
}
