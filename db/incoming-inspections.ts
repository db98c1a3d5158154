import type { Db } from './knex';

export interface InspectionValues {
  version: number;
  supplier: string;
  product: string;
  lotNumber: string;
  expiryDate: string;
  parameters: { name: string; result: string; specification: string }[];
  source: { coaExtractionId: string; confirmedBy: string; confirmedAt: string; text: string };
}

/**
 * An incoming inspection's recorded values, newest version first, each with the extraction it came from and who
 * confirmed it when; undefined when the sample is not an incoming-inspection sample.
 */
export async function incomingInspection(
  db: Db,
  sampleId: string,
): Promise<{ sampleId: string; accession: string; recorded: InspectionValues | null; versions: InspectionValues[] } | undefined> {
  const sample = await db('samples').where({ id: sampleId, sample_type: 'INCOMING' }).first('id', 'accession');
  if (!sample) return undefined;
  const rows = await db('incoming_inspection_records as r')
    .join('users as u', 'u.id', 'r.confirmed_by')
    .where('r.sample_id', sampleId)
    .orderBy('r.version', 'desc')
    .select('r.*', 'u.username', 'u.printed_name');
  const versions: InspectionValues[] = rows.map((r) => {
    const confirmedAt = new Date(r.confirmed_at).toISOString();
    const by = r.printed_name ? `${r.printed_name} (${r.username})` : r.username;
    return {
      version: r.version,
      supplier: r.supplier,
      product: r.product,
      lotNumber: r.lot_number,
      expiryDate: r.expiry_date,
      parameters: r.parameters,
      source: {
        coaExtractionId: r.coa_extraction_id,
        confirmedBy: r.username,
        confirmedAt,
        text: `from CoA extraction ${r.coa_extraction_id}, confirmed by ${by} at ${confirmedAt}`,
      },
    };
  });
  return { sampleId: sample.id, accession: sample.accession, recorded: versions[0] ?? null, versions };
}
