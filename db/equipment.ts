import type { Knex } from 'knex';
import { OPEN_CAPA_STAGES, type CapaSource } from '../common/capa';
import type { OutOfServiceReason } from '../common/equipment';
import type { Db } from './knex';

type Q = Db | Knex.Transaction;

export interface InstrumentRow {
  id: string;
  code: string;
  workflow_id: string;
  name: string;
  manufacturer: string;
  model: string;
  serial_number: string;
  software_version: string | null;
  firmware_version: string | null;
  location: string;
  state: 'commissioning' | 'in_service' | 'out_of_service' | 'retired';
  reasons: OutOfServiceReason[];
  current_certificate_id: string | null;
  calibration_valid_to: Date | null;
  reminder_before: string[];
  created_at: Date;
}

export const findInstrument = (db: Q, code: string): Promise<InstrumentRow | undefined> => db('instruments').where({ code }).first();

/**
 * Whether the instrument a result names may produce one now, judged by PostgreSQL's clock: in service, no reason
 * to be out of it, and a certificate valid at this instant (so usability ends exactly when the certificate does,
 * whenever the run's timer fires). Null when the identifier names no registered instrument.
 */
export async function instrumentUsability(
  db: Q,
  code: string,
): Promise<{ usable: boolean; state: string; reasons: string[]; calibrationValid: boolean } | null> {
  const row = await db('instruments')
    .where({ code })
    .first('state', 'reasons', db.raw('coalesce(calibration_valid_to > now(), false) as calibration_valid'));
  if (!row) return null;
  const calibrationValid = Boolean(row.calibration_valid);
  return {
    usable: row.state === 'in_service' && row.reasons.length === 0 && calibrationValid,
    state: row.state,
    reasons: row.reasons,
    calibrationValid,
  };
}

/** Why an instrument is not usable, in words a refusal can carry. */
export function unusableWhy(u: { state: string; reasons: string[]; calibrationValid: boolean }): string {
  const why = [...u.reasons];
  if (!u.calibrationValid && !why.includes('calibration_expired')) why.push('no current calibration');
  return `${u.state.replace('_', ' ')}${why.length ? ` (${why.join(', ')})` : ''}`;
}

/**
 * The analyses whose results the instrument produced since its last passing QC (or since it was registered): QC
 * runs excluded, newest last. Their run IDs only.
 */
export async function resultsSinceLastPassingQc(trx: Q, instrument: { id: string; code: string }): Promise<string[]> {
  const rows = await trx('analysis_entries as e')
    .join('analyses as a', 'a.id', 'e.analysis_id')
    .where('e.instrument', instrument.code)
    .whereNotNull('e.applied_at')
    .where('e.qc_run', false)
    .whereRaw(
      `e.applied_at > coalesce((select max(q.occurred_at) from instrument_events q where q.instrument_id = ? and q.kind = 'qc' and q.passed),
                              (select created_at from instruments where id = ?))`,
      [instrument.id, instrument.id],
    )
    .groupBy('a.workflow_id')
    .orderByRaw('min(e.applied_at)')
    .select('a.workflow_id');
  return rows.map((r: { workflow_id: string }) => r.workflow_id);
}

/**
 * The open CAPA an instrument's failure belongs to: one that already names the instrument, else the one an earlier
 * failure of it opened and that is still open (or not yet written by its run). Null: a new CAPA is needed.
 */
export async function openCapaForInstrument(trx: Knex.Transaction, instrumentId: string, source: CapaSource): Promise<string | null> {
  const naming = await trx('capa_sources as s')
    .join('capas as c', 'c.number', 's.capa_number')
    .whereIn('c.stage', OPEN_CAPA_STAGES)
    .where({ 's.source_type': source.type, 's.source_id': source.id })
    .orderBy('c.number')
    .first('c.workflow_id');
  if (naming) return naming.workflow_id;
  const earlier = await trx('instrument_events as e')
    .leftJoin('capas as c', 'c.workflow_id', trx.raw(`e.details->'capa'->>'workflowId'`))
    .where('e.instrument_id', instrumentId)
    .whereRaw(`e.details->'capa'->>'workflowId' is not null`)
    .andWhere((q) => q.whereNull('c.stage').orWhereIn('c.stage', OPEN_CAPA_STAGES))
    .orderBy('e.occurred_at', 'desc')
    .first(trx.raw(`e.details->'capa'->>'workflowId' as workflow_id`));
  return earlier?.workflow_id ?? null;
}
