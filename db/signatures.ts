import type { Knex } from 'knex';
import type { Actor } from '../common/roles';
import type { SignatureInput } from '../common/signatures';
import type { Db } from './knex';

export interface SignatureRecord {
  /** The same key records the signature once, however often the writing activity runs. */
  idempotencyKey: string;
  entityType: string;
  entityId: string;
  workflowId: string;
  /** Review round, for processes that loop (a revision voids the signatures of earlier rounds). */
  round: number;
  stageIndex: number;
  stageName: string;
  actor: Actor;
  signature: SignatureInput;
  documentVersionId?: string;
}

/** Records an electronic signature with its manifestation: printed name, meaning, UTC time, what was signed. */
export async function recordSignature(trx: Knex | Knex.Transaction, record: SignatureRecord): Promise<string> {
  await trx('signatures')
    .insert({
      idempotency_key: record.idempotencyKey,
      entity_type: record.entityType,
      entity_id: record.entityId,
      document_version_id: record.documentVersionId ?? null,
      workflow_id: record.workflowId,
      round: record.round,
      stage_index: record.stageIndex,
      stage_name: record.stageName,
      user_id: record.actor.userId,
      username: record.actor.username,
      printed_name: record.actor.printedName,
      meaning: record.signature.meaning,
      signed_at: record.signature.signedAt,
      content_hash: record.signature.contentHash,
    })
    .onConflict('idempotency_key')
    .ignore();
  return (await trx('signatures').where({ idempotency_key: record.idempotencyKey }).first('id')).id;
}

/**
 * Voids a record's signatures of earlier rounds, e.g. when the signed content changes: each gets a row in
 * signature_voids that references it, and the signature itself stays as it was signed. Returns how many were
 * voided now; signatures voided before are left alone, so a retried call voids nothing twice.
 */
export async function voidSignatures(
  trx: Knex | Knex.Transaction,
  where: { entityType: string; entityId: string; workflowId: string; beforeRound: number },
  reason: string,
): Promise<number> {
  const result = await trx.raw(
    `insert into signature_voids (signature_id, reason)
       select s.id, ? from signatures s
        where s.entity_type = ? and s.entity_id = ? and s.workflow_id = ? and s.round < ?
          and not exists (select 1 from signature_voids v where v.signature_id = s.id)
     on conflict (signature_id) do nothing`,
    [reason, where.entityType, where.entityId, where.workflowId, where.beforeRound],
  );
  return result.rowCount ?? 0;
}

/** Signatures with whether, when and why each was voided (from signature_voids), for the given rows. */
export function signaturesWithVoids(db: Knex | Knex.Transaction) {
  return db('signatures as s').leftJoin('signature_voids as sv', 'sv.signature_id', 's.id');
}

/** The void columns readers show, named as the signature row had them before voids got their own table. */
export const VOID_COLUMNS = ['sv.signature_id is not null as void', 'sv.voided_at', 'sv.reason as void_reason'] as const;

/** The columns a signature is shown with: its manifestation, what was signed and whether it was voided. */
const signatureColumns = (db: Db) => [
  's.workflow_id',
  's.round',
  's.stage_name',
  's.username',
  's.printed_name',
  's.meaning',
  's.signed_at',
  's.content_hash',
  db.raw(VOID_COLUMNS.join(', ')),
];

export async function listSignaturesFor(db: Db, entityType: string, entityId: string) {
  return signaturesWithVoids(db)
    .where({ 's.entity_type': entityType, 's.entity_id': entityId })
    .orderBy('s.signed_at')
    .select(...signatureColumns(db));
}

/** The signatures on several records, oldest first, each naming the record it is on (`entity_type`, `entity_id`). */
export async function listSignaturesOn(db: Db, records: { entityType: string; entityId: string }[]) {
  if (!records.length) return [];
  return signaturesWithVoids(db)
    .whereIn(
      ['s.entity_type', 's.entity_id'],
      records.map((r) => [r.entityType, r.entityId]),
    )
    .orderBy(['s.signed_at', 's.id'])
    .select('s.entity_type', 's.entity_id', ...signatureColumns(db));
}
