import type { Knex } from 'knex';
import type { Actor } from '../common/roles';
import { appendAudit } from './audit';
import type { Db } from './knex';
import { deletePatient } from './patients';

/*
 * Records with signatures are retired, never deleted (21 CFR 11.10(c), HIPAA 164.316(b)(2)): a patient with a
 * signed summary is marked retired and kept, read-only, until the longest retention rule that applies runs out.
 * Only then may the record be purged, and never while a legal hold is on it. Retention is a rule per record type
 * (retention_rules): how many years a record is kept after the event its basis names.
 */

export interface RetentionRule {
  recordType: string;
  keepYears: number;
  basis: string;
}

export async function retentionRules(db: Knex): Promise<RetentionRule[]> {
  const rows = await db('retention_rules').orderBy('record_type').select('record_type', 'keep_years', 'basis');
  return rows.map((r) => ({ recordType: r.record_type, keepYears: r.keep_years, basis: r.basis }));
}

/** The summaries of a patient that carry an electronic signature (an approval or an edit, signed by its reviewer). */
const signedSummaries = (db: Knex, patientId: string) =>
  db('summaries as s')
    .where('s.patient_id', patientId)
    .whereExists(
      db('signatures as g').where('g.entity_type', 'soap-summary').whereRaw('g.entity_id = s.id::text').select(db.raw('1')),
    );

export interface PatientRetention {
  retiredAt: string | null;
  retainUntil: string | null;
  legalHold: boolean;
  signedSummaries: number;
}

const iso = (value: Date | string | null) => (value ? new Date(value).toISOString() : null);

export async function patientRetention(db: Knex, patientId: string): Promise<PatientRetention | undefined> {
  const row = await db('patients').where({ id: patientId }).first('retired_at', 'retain_until', 'legal_hold');
  if (!row) return undefined;
  const signed = await signedSummaries(db, patientId).count('* as n').first();
  return {
    retiredAt: iso(row.retired_at),
    retainUntil: iso(row.retain_until),
    legalHold: row.legal_hold,
    signedSummaries: Number(signed?.n ?? 0),
  };
}

/** What a request to delete a patient came to. */
export type Disposal =
  | { outcome: 'deleted' }
  | { outcome: 'retired'; retiredAt: string; retainUntil: string; signedSummaries: number; rule: RetentionRule }
  | { outcome: 'legal_hold'; reason: string }
  | { outcome: 'retained'; retiredAt: string; retainUntil: string }
  | { outcome: 'not_found' };

/**
 * Deletes, retires or refuses, under a lock on the patient row:
 * - a legal hold refuses both retirement and purge;
 * - a patient without signed summaries is deleted with everything of theirs (as before retention existed);
 * - a patient with signed summaries is retired: kept whole (notes, their versions, jobs, summaries, signatures),
 *   read-only, until the signed-summary rule runs out counted from the newest signature;
 * - a retired patient is purged once that date has passed, and refused (retained) before.
 */
export async function disposePatient(db: Db, actor: Actor, patientId: string): Promise<Disposal> {
  return db.transaction(async (trx) => {
    // FOR UPDATE, not NO KEY UPDATE: this transaction may delete the patient, so inserts that reference it wait.
    const row = await trx('patients').where({ id: patientId }).forUpdate().first('retired_at', 'retain_until', 'legal_hold', 'legal_hold_reason');
    if (!row) return { outcome: 'not_found' };
    if (row.legal_hold) {
      await appendAudit(trx, {
        actorId: actor.userId,
        actor: actor.username,
        action: 'patient.disposal_refused',
        entityType: 'patient',
        entityId: patientId,
        details: { because: 'legal_hold' },
      });
      return { outcome: 'legal_hold', reason: row.legal_hold_reason };
    }
    if (row.retired_at) {
      if (new Date(row.retain_until).getTime() > Date.now()) {
        return { outcome: 'retained', retiredAt: iso(row.retired_at)!, retainUntil: iso(row.retain_until)! };
      }
      await deletePatient(trx, actor, patientId);
      return { outcome: 'deleted' };
    }
    const count = Number((await signedSummaries(trx, patientId).count('* as n').first())?.n ?? 0);
    if (count === 0) {
      await deletePatient(trx, actor, patientId);
      return { outcome: 'deleted' };
    }
    // Counted from the newest signature on any of the patient's summaries.
    const signed = await trx('signatures as g')
      .join('summaries as s', (on) => on.on(trx.raw('g.entity_id = s.id::text')))
      .where('g.entity_type', 'soap-summary')
      .where('s.patient_id', patientId)
      .max('g.signed_at as newest')
      .first();
    const rule = await trx('retention_rules').where({ record_type: 'signed_summary' }).first('record_type', 'keep_years', 'basis');
    const [retired] = await trx('patients')
      .where({ id: patientId })
      .update({
        retired_at: trx.fn.now(),
        retired_by: actor.userId,
        retain_until: trx.raw(`greatest(?::timestamptz, now()) + make_interval(years => ?)`, [signed!.newest, rule.keep_years]),
        updated_at: trx.fn.now(),
      })
      .returning(['retired_at', 'retain_until']);
    const notes = Number((await trx('soap_notes').where({ patient_id: patientId }).count('* as n').first())?.n ?? 0);
    await appendAudit(trx, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'patient.retired',
      entityType: 'patient',
      entityId: patientId,
      details: {
        signedSummaries: count,
        notes,
        rule: { recordType: rule.record_type, keepYears: rule.keep_years },
        retainUntil: iso(retired.retain_until),
      },
    });
    return {
      outcome: 'retired',
      retiredAt: iso(retired.retired_at)!,
      retainUntil: iso(retired.retain_until)!,
      signedSummaries: count,
      rule: { recordType: rule.record_type, keepYears: rule.keep_years, basis: rule.basis },
    };
  });
}

/** Puts or lifts a legal hold; false when there is no such patient. Each change is audited with the matter named. */
export async function setLegalHold(
  db: Db,
  actor: Actor,
  patientId: string,
  hold: { hold: true; reason: string } | { hold: false },
): Promise<PatientRetention | undefined> {
  return db.transaction(async (trx) => {
    const row = await trx('patients').where({ id: patientId }).forNoKeyUpdate().first('legal_hold');
    if (!row) return undefined;
    if (row.legal_hold !== hold.hold || hold.hold) {
      await trx('patients')
        .where({ id: patientId })
        .update(
          hold.hold
            ? { legal_hold: true, legal_hold_reason: hold.reason, legal_hold_by: actor.userId, legal_hold_at: trx.fn.now() }
            : { legal_hold: false, legal_hold_reason: null, legal_hold_by: null, legal_hold_at: null },
        );
      await appendAudit(trx, {
        actorId: actor.userId,
        actor: actor.username,
        action: hold.hold ? 'patient.legal_hold_set' : 'patient.legal_hold_lifted',
        entityType: 'patient',
        entityId: patientId,
        details: hold.hold ? { matter: hold.reason } : {},
      });
    }
    return patientRetention(trx, patientId);
  });
}

/** A write to a retired record is refused: it is kept as it was when retired. */
export async function isRetired(db: Knex, patientId: string): Promise<boolean> {
  return Boolean(await db('patients').where({ id: patientId }).whereNotNull('retired_at').first('id'));
}
