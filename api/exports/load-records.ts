import { auditTrail } from '../../db/audit';
import { findContent, listSignatures } from '../../db/documents';
import type { Actor } from '../../common/roles';
import type { VersionRow } from '../../db/documents';
import type { ApiDeps } from '../deps';
import type { SummaryJobRow } from '../../db/summaries';
import { capaView } from '../services/capa';
import { summaryView } from '../services/soap-summary';
import { fields, isoUtc, signaturesOf, trailEvents, type ExportedRecord } from './exported-record';
import { generated } from './projection-records';

export { sampleRecord } from './projection-records';

/** A document version: its text, its state, the signatures on it and the document's whole trail. */
export async function documentVersionRecord(deps: ApiDeps, actor: Actor, row: VersionRow): Promise<ExportedRecord> {
  const [content, signatures, trail] = await Promise.all([
    findContent(deps.db, row.content_hash),
    listSignatures(deps.db, row.id),
    auditTrail(deps.db, 'document', [row.number]),
  ]);
  return {
    kind: 'document_version',
    title: `Document ${row.number} version ${row.version}: ${row.title}`,
    entityType: 'document',
    entityId: row.number,
    state: row.state,
    fields: fields([
      ['Document', row.number],
      ['Title', row.title],
      ['Type', row.doc_type],
      ['Version', row.version],
      ['State', row.state],
      ['Author', row.author],
      ['Content SHA-256', row.content_hash],
      ['Change summary', row.change_summary],
      ['Review round', row.round],
      ['Submitted', isoUtc(row.submitted_at)],
      ['Approved', isoUtc(row.approved_at)],
      ['Effective', isoUtc(row.effective_at)],
      ['Closed', isoUtc(row.closed_at)],
      ['Next periodic review', isoUtc(row.next_review_at)],
    ]),
    content: content ?? '',
    signatures: signaturesOf(signatures),
    custody: null,
    trail: trailEvents(trail),
    ...generated(actor),
  };
}

/** A CAPA: its headline from the run or the projection, sources, actions, signatures and whole trail. */
export async function capaRecord(deps: ApiDeps, actor: Actor, number: string): Promise<ExportedRecord> {
  const [view, trail] = await Promise.all([capaView(deps, number), auditTrail(deps.db, 'capa', [number])]);
  return {
    kind: 'capa',
    title: `CAPA ${number}: ${view.title}`,
    entityType: 'capa',
    entityId: number,
    state: view.stage,
    fields: fields([
      ['CAPA', number],
      ['Title', view.title],
      ['Stage', view.stage],
      ['Outcome', view.outcome],
      ['Risk', view.risk],
      ['Due', isoUtc(view.dueAt)],
      ['Assignees', view.assignees],
      ['Sources', view.sources],
      ['Actions', view.actions],
    ]),
    content: null,
    signatures: signaturesOf(view.signatures),
    custody: null,
    trail: trailEvents(trail),
    ...generated(actor),
  };
}

/**
 * A SOAP-note summary job: its latest summary as a clinician reviews it (the text, whether a model wrote it, its
 * provenance), its review signatures and the job's whole trail, kept on its patient's trail. PHI.
 */
export async function summaryRecord(deps: ApiDeps, actor: Actor, job: SummaryJobRow): Promise<ExportedRecord> {
  const [summary, trail] = await Promise.all([
    summaryView(deps, job.workflow_id),
    auditTrail(deps.db, 'patient', [job.patient_id], { detail: 'workflowId', equals: job.workflow_id }),
  ]);
  return {
    kind: 'summary',
    title: `Summary job ${job.workflow_id}`,
    entityType: 'patient',
    entityId: job.patient_id,
    state: job.stage,
    fields: fields([
      ['Summary job', job.workflow_id],
      ['Patient', job.patient_id],
      ['Stage', job.stage],
      ['Round', summary.round],
      ['Summary status', summary.status],
      ['AI-generated', summary.aiGenerated ? 'yes' : 'no (extractive, not written by a model)'],
      ['Provider', summary.provenance.provider],
      ['Model', summary.provenance.model],
      ['Prompt version', summary.provenance.promptVersion],
      ['Prompt SHA-256', summary.provenance.promptHash],
      ['Notes SHA-256', summary.provenance.notesHash],
      ['Content SHA-256', summary.contentHash],
      ['Edited by the reviewer', summary.text !== summary.generatedText ? 'yes' : 'no'],
      ['Review', summary.review],
      ['Requested', isoUtc(job.requested_at)],
      ['Finished', isoUtc(job.finished_at)],
    ]),
    content: summary.text,
    signatures: signaturesOf(summary.signatures),
    custody: null,
    trail: trailEvents(trail),
    ...generated(actor),
  };
}
