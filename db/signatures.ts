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

/** Marks a record's signatures void (they stay in the trail), e.g. when the signed content changes. */
export async function voidSignatures(
  trx: Knex | Knex.Transaction,
  where: { entityType: string; entityId: string; workflowId: string; beforeRound: number },
  reason: string,
) {
  return trx('signatures')
    .where({ entity_type: where.entityType, entity_id: where.entityId, workflow_id: where.workflowId, void: false })
    .where('round', '<', where.beforeRound)
    .update({ void: true, voided_at: trx.fn.now(), void_reason: reason });
}

export async function listSignaturesFor(db: Db, entityType: string, entityId: string) {
  return db('signatures')
    .where({ entity_type: entityType, entity_id: entityId })
    .orderBy('signed_at')
    .select(
      'workflow_id',
      'round',
      'stage_name',
      'username',
      'printed_name',
      'meaning',
      'signed_at',
      'content_hash',
      'void',
      'voided_at',
      'void_reason',
    );
}
