import { recordsTrail, recordsTrailPage, type AuditTrailRow, type TrailRecord } from './audit';
import type { Db } from './knex';
import { listSignaturesOn } from './signatures';

/**
 * The records whose events make up a sample's trail: the sample itself, its analyses (every retest), its reports
 * (every version) and its critical-value calls, each as its events are recorded (the analysis's, report's and call's
 * workflow ID). Read anew for every page: a record that comes into being between two pages has only events after them.
 */
export async function sampleTrailRecords(db: Db, sample: { id: string; accession: string }): Promise<TrailRecord[]> {
  const of = (entityType: string, table: string) =>
    db(table).select(db.raw('?::text as entity_type', [entityType]), 'workflow_id as entity_id').where({ sample_id: sample.id });
  const rows: { entity_type: string; entity_id: string }[] = await db.unionAll(
    [of('analysis', 'analyses'), of('report', 'reports'), of('critical_call', 'critical_calls')],
    true,
  );
  return [{ entityType: 'sample', entityId: sample.accession }, ...rows.map((r) => ({ entityType: r.entity_type, entityId: r.entity_id }))];
}

/** One keyset page of a sample's complete trail, in chain order: the events after sequence number `afterSeq`. */
export async function sampleTrailPage(
  db: Db,
  sample: { id: string; accession: string },
  page: { afterSeq?: number; limit: number },
): Promise<AuditTrailRow[]> {
  return recordsTrailPage(db, await sampleTrailRecords(db, sample), page);
}

/** A sample's complete trail (its analyses', reports' and calls' events with its own), oldest first. */
export async function sampleTrail(db: Db, sample: { id: string; accession: string }): Promise<AuditTrailRow[]> {
  return recordsTrail(db, await sampleTrailRecords(db, sample));
}

/**
 * Every electronic signature on a sample's records: its own, its analyses' (verifications and result releases, every
 * retest) and its reports' (every version's release), oldest first, each naming the record it is on.
 */
export async function sampleSignatures(db: Db, sample: { id: string; accession: string }) {
  return listSignaturesOn(db, await sampleTrailRecords(db, sample));
}
