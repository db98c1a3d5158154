import { diff } from './field-changes';
import type { Knex } from 'knex';
import type { Actor } from '../common/roles';
import { appendAudit } from './audit';
import type { Db } from './knex';
import { afterRow } from './keyset';

export const PATIENT_SEXES = ['female', 'male', 'other', 'unknown'] as const;
export type PatientSex = (typeof PATIENT_SEXES)[number];

export const PATIENT_SORTS = ['family_name', 'given_name', 'date_of_birth', 'created_at', 'updated_at'] as const;
export type PatientSort = (typeof PATIENT_SORTS)[number];

/** Names sort case-insensitively and break ties on the other name; the ID makes every order total. */
const SORT_KEYS: Record<PatientSort, string[]> = {
  family_name: ['lower(p.family_name)', 'lower(p.given_name)', 'p.id'],
  given_name: ['lower(p.given_name)', 'lower(p.family_name)', 'p.id'],
  date_of_birth: ['p.date_of_birth', 'p.id'],
  created_at: ['p.created_at', 'p.id'],
  updated_at: ['p.updated_at', 'p.id'],
};

export interface PatientInput {
  givenName: string;
  familyName: string;
  dateOfBirth: string;
  mrn?: string | null;
  sex?: PatientSex | null;
  address?: string | null;
  phone?: string | null;
}

export interface Patient {
  id: string;
  givenName: string;
  familyName: string;
  dateOfBirth: string;
  mrn: string | null;
  sex: PatientSex | null;
  address: string | null;
  phone: string | null;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
  /** Set when the record was retired instead of deleted: kept, read-only, until retainUntil. */
  retired: { at: string; retainUntil: string } | null;
  legalHold: boolean;
}

const COLUMNS: Record<keyof PatientInput, string> = {
  givenName: 'given_name',
  familyName: 'family_name',
  dateOfBirth: 'date_of_birth',
  mrn: 'mrn',
  sex: 'sex',
  address: 'address',
  phone: 'phone',
};

/** A refused write, mapped to 409 by the API. Its detail never carries a submitted value. */
export class PatientConflict extends Error {
  constructor(
    readonly type: string,
    detail: string,
  ) {
    super(detail);
  }
}

const iso = (value: Date | string) => new Date(value).toISOString();

// date_of_birth as text: the pg driver would turn a date into local midnight and shift it across time zones.
const selectPatient = (db: Knex) =>
  db('patients as p')
    .join('users as u', 'u.id', 'p.created_by')
    .select('p.id', 'p.given_name', 'p.family_name', 'p.mrn', 'p.sex', 'p.address', 'p.phone', 'p.created_at', 'p.updated_at')
    .select('p.retired_at', 'p.retain_until', 'p.legal_hold')
    .select(db.raw(`to_char(p.date_of_birth, 'YYYY-MM-DD') as date_of_birth`), 'u.username as created_by');

function toPatient(row: Record<string, unknown>): Patient {
  return {
    id: row.id as string,
    givenName: row.given_name as string,
    familyName: row.family_name as string,
    dateOfBirth: row.date_of_birth as string,
    mrn: (row.mrn as string | null) ?? null,
    sex: (row.sex as PatientSex | null) ?? null,
    address: (row.address as string | null) ?? null,
    phone: (row.phone as string | null) ?? null,
    createdBy: row.created_by as string,
    createdAt: iso(row.created_at as Date),
    updatedAt: iso(row.updated_at as Date),
    retired: row.retired_at ? { at: iso(row.retired_at as Date), retainUntil: iso(row.retain_until as Date) } : null,
    legalHold: Boolean(row.legal_hold),
  };
}

function isMrnTaken(err: unknown): boolean {
  const e = err as { code?: string; constraint?: string };
  return e.code === '23505' && e.constraint === 'patients_mrn_key';
}

const MRN_TAKEN = () => new PatientConflict('mrn-taken', 'another patient already has this MRN');

export async function findPatient(db: Knex, id: string): Promise<Patient | undefined> {
  const row = await selectPatient(db).where('p.id', id).first();
  return row ? toPatient(row) : undefined;
}

/** Keeps the patient's record as it now stands as its next version, with who recorded it (db: patient_versions). */
async function recordPatientVersion(trx: Knex.Transaction, patientId: string, recordedBy: string): Promise<void> {
  await trx.raw(
    `insert into patient_versions (patient_id, version, given_name, family_name, date_of_birth, mrn, sex, address, phone, recorded_by)
     select p.id, coalesce((select max(version) from patient_versions where patient_id = p.id), 0) + 1,
            p.given_name, p.family_name, p.date_of_birth, p.mrn, p.sex, p.address, p.phone, ?
       from patients p where p.id = ?`,
    [recordedBy, patientId],
  );
}

/** Creates the patient with its creator as the first member of the care team. */
export async function createPatient(db: Db, actor: Actor, input: PatientInput): Promise<Patient> {
  try {
    return await db.transaction(async (trx) => {
      const [{ id }] = await trx('patients')
        .insert({
          given_name: input.givenName,
          family_name: input.familyName,
          date_of_birth: input.dateOfBirth,
          mrn: input.mrn ?? null,
          sex: input.sex ?? null,
          address: input.address ?? null,
          phone: input.phone ?? null,
          created_by: actor.userId,
        })
        .returning('id');
      await trx('patient_clinicians').insert({ patient_id: id, user_id: actor.userId, added_by: actor.userId });
      await recordPatientVersion(trx, id, actor.userId);
      await appendAudit(trx, {
        actorId: actor.userId,
        actor: actor.username,
        action: 'patient.created',
        entityType: 'patient',
        entityId: id,
        details: { fields: providedFields(input), careTeam: [actor.username] },
      });
      return (await findPatient(trx, id))!;
    });
  } catch (err) {
    if (isMrnTaken(err)) throw MRN_TAKEN();
    throw err;
  }
}

const providedFields = (input: Partial<PatientInput>) =>
  (Object.keys(COLUMNS) as (keyof PatientInput)[]).filter((k) => input[k] !== undefined && input[k] !== null);

/**
 * Applies the fields present in the change (null clears an optional one). Only fields whose value differs are
 * written and audited, by name; an unchanged request writes nothing. Undefined when there is no such patient.
 */
export async function updatePatient(
  db: Knex,
  actor: Actor,
  id: string,
  change: Partial<PatientInput>,
): Promise<{ patient: Patient; changed: (keyof PatientInput)[] } | undefined> {
  try {
    return await db.transaction(async (trx) => {
      const current = await trx('patients')
        .where({ id })
        .forNoKeyUpdate()
        .first(
          'given_name',
          'family_name',
          'mrn',
          'sex',
          'address',
          'phone',
          trx.raw(`to_char(date_of_birth, 'YYYY-MM-DD') as date_of_birth`),
        );
      if (!current) return undefined;
      const changed = (Object.keys(COLUMNS) as (keyof PatientInput)[]).filter(
        (k) => change[k] !== undefined && (change[k] ?? null) !== (current[COLUMNS[k]] ?? null),
      );
      if (changed.length) {
        const values: Record<string, unknown> = { updated_at: trx.fn.now() };
        for (const k of changed) values[COLUMNS[k]] = change[k] ?? null;
        await trx('patients').where({ id }).update(values);
        await recordPatientVersion(trx, id, actor.userId);
        await appendAudit(trx, {
          actorId: actor.userId,
          actor: actor.username,
          action: 'patient.updated',
          entityType: 'patient',
          entityId: id,
          // Every patient field is PHI: the trail keeps a hash of the old and the new value, never the value.
          details: {
            fields: changed,
            changes: diff(
              Object.fromEntries(changed.map((k) => [k, current[COLUMNS[k]] ?? null])),
              Object.fromEntries(changed.map((k) => [k, change[k] ?? null])),
              { phiFields: changed },
            ),
          },
        });
      }
      return { patient: (await findPatient(trx, id))!, changed };
    });
  } catch (err) {
    if (isMrnTaken(err)) throw MRN_TAKEN();
    throw err;
  }
}

/**
 * Deletes the patient; the foreign keys remove the care team, notes, summary jobs, attempts, edits and summaries.
 * The audit event keeps only the ID and how many rows went with it. False when there is no such patient.
 */
export async function deletePatient(db: Knex, actor: Actor, id: string): Promise<boolean> {
  return db.transaction(async (trx) => {
    const row = await trx('patients').where({ id }).forUpdate().first('id');
    if (!row) return false;
    const count = async (table: string) => Number((await trx(table).where({ patient_id: id }).count('* as n').first())?.n ?? 0);
    // One after another: a transaction's queries share one connection.
    const notes = await count('soap_notes');
    const summaryJobs = await count('summary_jobs');
    const summaries = await count('summaries');
    // Deleted before the audit event: the cascade's row locks are taken before the audit trail's lock, as every
    // other writer of those rows takes them.
    await trx('patients').where({ id }).delete();
    await appendAudit(trx, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'patient.deleted',
      entityType: 'patient',
      entityId: id,
      details: { notes, summaryJobs, summaries },
    });
    return true;
  });
}

export interface PatientListOptions {
  /** Only patients on this clinician's care team. */
  clinicianId: string;
  q?: string;
  sort: PatientSort;
  desc: boolean;
  limit: number;
  /** Continue after this patient (a keyset cursor's row). */
  afterId?: string;
}

const escapeLike = (text: string) => text.replace(/[\\%_]/g, '\\$&');
const MAX_NAME_TOKENS = 6;

/**
 * Name search, case-insensitive and by prefix: "ann" finds given or family names starting with it; "lee, ann"
 * is family then given; "ann lee" is given then family, tried at every split so that multi-word names
 * ("Mary Ann van der Berg") are found too.
 */
function nameSearch(q: string) {
  const text = q.trim().replace(/\s+/g, ' ');
  return (w: Knex.QueryBuilder) => {
    const comma = text.indexOf(',');
    if (comma >= 0) {
      const family = text.slice(0, comma).trim();
      const given = text.slice(comma + 1).trim();
      if (family) w.where('p.family_name', 'ilike', `${escapeLike(family)}%`);
      if (given) w.where('p.given_name', 'ilike', `${escapeLike(given)}%`);
      return;
    }
    const whole = `${escapeLike(text)}%`;
    w.where('p.given_name', 'ilike', whole).orWhere('p.family_name', 'ilike', whole);
    const tokens = text.split(' ').slice(0, MAX_NAME_TOKENS);
    for (let k = 1; k < tokens.length; k++) {
      const given = `${escapeLike(tokens.slice(0, k).join(' '))}%`;
      const family = `${escapeLike(tokens.slice(k).join(' '))}%`;
      w.orWhere((both) => both.where('p.given_name', 'ilike', given).where('p.family_name', 'ilike', family));
    }
  };
}

const onCareTeam = (db: Knex, clinicianId: string) => (q: Knex.QueryBuilder) =>
  q.whereExists(db('patient_clinicians as pc').whereRaw('pc.patient_id = p.id').where('pc.user_id', clinicianId).select(db.raw('1')));

/** One page of the clinician's patients and the number matching in all; the cursor row must be one of theirs. */
export async function listPatients(db: Knex, o: PatientListOptions): Promise<{ items: Patient[]; total: number; more: boolean }> {
  const filtered = (q: Knex.QueryBuilder) => {
    onCareTeam(db, o.clinicianId)(q);
    if (o.q && o.q.replace(/[\s,]/g, '') !== '') q.where(nameSearch(o.q));
    return q;
  };
  const keys = SORT_KEYS[o.sort];
  const page = filtered(selectPatient(db));
  if (o.afterId) page.whereRaw(afterRow(keys, o.desc, 'patients', 'p'), [o.afterId]);
  for (const key of keys) page.orderByRaw(`${key} ${o.desc ? 'desc' : 'asc'}`);
  const rows = await page.limit(o.limit + 1);
  const totalRow = await filtered(db('patients as p')).count('* as n').first();
  return { items: rows.slice(0, o.limit).map(toPatient), total: Number(totalRow?.n ?? 0), more: rows.length > o.limit };
}

export async function isOnCareTeam(db: Knex, patientId: string, userId: string): Promise<boolean> {
  return Boolean(await db('patient_clinicians').where({ patient_id: patientId, user_id: userId }).first('user_id'));
}

/** The user IDs on each of the patients' care teams (IDs only; a patient without a team is absent). */
export async function careTeamUserIds(db: Knex, patientIds: string[]): Promise<Map<string, Set<string>>> {
  const teams = new Map<string, Set<string>>();
  if (!patientIds.length) return teams;
  const rows: { patient_id: string; user_id: string }[] = await db('patient_clinicians')
    .whereIn('patient_id', patientIds)
    .select('patient_id', 'user_id');
  for (const r of rows) {
    let team = teams.get(r.patient_id);
    if (!team) teams.set(r.patient_id, (team = new Set()));
    team.add(r.user_id);
  }
  return teams;
}

export interface CareTeamMember {
  username: string;
  printedName: string;
  active: boolean;
  addedBy: string;
  addedAt: string;
  /** How they joined: added by a clinician of the team, an admin's request a clinician confirmed, or break-glass. */
  access: 'clinician' | 'confirmed' | 'break_glass';
  confirmedBy: string | null;
}

export async function careTeam(db: Knex, patientId: string): Promise<CareTeamMember[]> {
  const rows = await db('patient_clinicians as pc')
    .join('users as u', 'u.id', 'pc.user_id')
    .join('users as a', 'a.id', 'pc.added_by')
    .leftJoin('users as c', 'c.id', 'pc.confirmed_by')
    .where('pc.patient_id', patientId)
    .orderBy([{ column: 'pc.added_at' }, { column: 'u.username' }])
    .select('u.username', 'u.printed_name', 'u.active', 'a.username as added_by', 'pc.added_at', 'pc.access', 'c.username as confirmed_by');
  return rows.map((r) => ({
    username: r.username,
    printedName: r.printed_name,
    active: r.active,
    addedBy: r.added_by,
    addedAt: iso(r.added_at),
    access: r.access,
    confirmedBy: r.confirmed_by ?? null,
  }));
}

/** Adds a clinician to the care team; false when they already were on it (nothing written). */
export async function addToCareTeam(db: Db, actor: Actor, patientId: string, user: { id: string; username: string }): Promise<boolean> {
  return db.transaction(async (trx) => {
    const inserted = await trx('patient_clinicians')
      .insert({ patient_id: patientId, user_id: user.id, added_by: actor.userId })
      .onConflict(['patient_id', 'user_id'])
      .ignore()
      .returning('user_id');
    if (!inserted.length) return false;
    await appendAudit(trx, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'patient.clinician_added',
      entityType: 'patient',
      entityId: patientId,
      details: { userId: user.id, username: user.username },
    });
    return true;
  });
}

/**
 * Takes a clinician off the care team. Refused when no other active clinician would remain: a patient nobody
 * may read is a record lost to its own clinicians. The patient row is locked so two removals cannot both pass.
 */
export async function removeFromCareTeam(
  db: Db,
  actor: Actor,
  patientId: string,
  user: { id: string; username: string },
): Promise<'removed' | 'not-member' | 'no-patient'> {
  return db.transaction(async (trx) => {
    if (!(await trx('patients').where({ id: patientId }).forNoKeyUpdate().first('id'))) return 'no-patient';
    if (!(await isOnCareTeam(trx, patientId, user.id))) return 'not-member';
    const others = await trx('patient_clinicians as pc')
      .join('users as u', 'u.id', 'pc.user_id')
      .where('pc.patient_id', patientId)
      .whereNot('pc.user_id', user.id)
      .where('u.active', true)
      .whereRaw(`'clinician' = any(u.roles)`)
      .count('* as n')
      .first();
    if (Number(others?.n ?? 0) === 0) {
      throw new PatientConflict('last-clinician', 'the care team needs at least one other active clinician; add one first');
    }
    await trx('patient_clinicians').where({ patient_id: patientId, user_id: user.id }).delete();
    await appendAudit(trx, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'patient.clinician_removed',
      entityType: 'patient',
      entityId: patientId,
      details: { userId: user.id, username: user.username },
    });
    return 'removed';
  });
}

export interface PatientIdentifiers {
  givenName: string;
  familyName: string;
  dateOfBirth: string;
  sex: PatientSex | null;
  mrn: string | null;
  address: string | null;
  phone: string | null;
}

/** Everything that identifies the patient, for a prompt builder that decides what to strip. */
export async function patientIdentifiers(db: Knex, patientId: string): Promise<PatientIdentifiers | undefined> {
  const p = await findPatient(db, patientId);
  if (!p) return undefined;
  return {
    givenName: p.givenName,
    familyName: p.familyName,
    dateOfBirth: p.dateOfBirth,
    sex: p.sex,
    mrn: p.mrn,
    address: p.address,
    phone: p.phone,
  };
}

/** The date of birth as YYYY-MM-DD, or undefined for an unknown patient. */
export async function patientBirthDate(db: Knex, patientId: string): Promise<string | undefined> {
  const row = await db('patients').where({ id: patientId }).first(db.raw(`to_char(date_of_birth, 'YYYY-MM-DD') as dob`));
  return row?.dob;
}
