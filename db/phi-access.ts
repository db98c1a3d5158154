import type { Knex } from 'knex';

export const PHI_RECORD_KINDS = [
  'patient',
  'patient_list',
  'note',
  'note_list',
  'note_versions',
  'summary',
  'summary_job',
  'summary_job_list',
  'sample_export',
  'summary_export',
  'audit_trail',
  'report',
  'report_list',
  'analysis',
  'analysis_list',
  'critical_call',
] as const;
export type PhiRecordKind = (typeof PHI_RECORD_KINDS)[number];
export type PhiAccessOutcome = 'read' | 'denied';

/**
 * One disclosure of PHI, or one refused attempt: IDs, usernames and the route pattern only. Nothing here may
 * carry a name, an MRN, a note's text or a search term.
 */
export interface PhiAccess {
  userId: string;
  username: string;
  kind: PhiRecordKind;
  /** Every patient the answer showed (one for a record, each one listed for a search). */
  patientIds: string[];
  /** The notes, summaries or summary jobs shown. */
  recordIds: string[];
  outcome: PhiAccessOutcome;
  method: string;
  route: string;
  requestId?: string;
}

/** Appends the event and names it in each patient's log, in one transaction. */
export async function recordPhiAccess(db: Knex, event: PhiAccess): Promise<string> {
  return db.transaction(async (trx) => {
    const [row] = await trx('phi_access_events')
      .insert({
        user_id: event.userId,
        username: event.username,
        record_kind: event.kind,
        record_ids: event.recordIds,
        outcome: event.outcome,
        method: event.method.toUpperCase(),
        route: event.route,
        request_id: event.requestId ?? null,
      })
      .returning(['id', 'occurred_at']);
    const patients = [...new Set(event.patientIds)];
    if (patients.length) {
      await trx('phi_access_event_patients').insert(
        patients.map((patientId) => ({ patient_id: patientId, event_id: row.id, occurred_at: row.occurred_at })),
      );
    }
    return row.id as string;
  });
}

export interface AccessLogFilter {
  username?: string;
  from?: Date;
  to?: Date;
  limit: number;
  afterId?: string;
}

export interface AccessLogEntry {
  id: string;
  at: string;
  userId: string;
  username: string;
  outcome: PhiAccessOutcome;
  kind: PhiRecordKind;
  /** For a list of patients, none: how many were shown is enough, the others' IDs are not this patient's business. */
  recordIds: string[];
  patientsShown: number;
  method: string;
  route: string;
  requestId: string | null;
}

/** Whether any event names this patient: a deleted patient's log stays readable. */
export async function hasAccessEvents(db: Knex, patientId: string): Promise<boolean> {
  return Boolean(await db('phi_access_event_patients').where({ patient_id: patientId }).first('event_id'));
}

/** Whether the event is in this patient's log (a cursor from another patient's log is not). */
export async function isAccessEventOf(db: Knex, patientId: string, eventId: string): Promise<boolean> {
  return Boolean(await db('phi_access_event_patients').where({ patient_id: patientId, event_id: eventId }).first('event_id'));
}

/** The patient's access log, newest first, a keyset page at a time. */
export async function listAccessEvents(db: Knex, patientId: string, filter: AccessLogFilter) {
  const base = db('phi_access_event_patients as ep')
    .join('phi_access_events as e', 'e.id', 'ep.event_id')
    .where('ep.patient_id', patientId);
  if (filter.username) base.where('e.username', filter.username);
  if (filter.from) base.where('ep.occurred_at', '>=', filter.from);
  if (filter.to) base.where('ep.occurred_at', '<', filter.to);

  const page = base
    .clone()
    .select(
      'e.id',
      'e.occurred_at',
      'e.user_id',
      'e.username',
      'e.outcome',
      'e.record_kind',
      'e.record_ids',
      'e.method',
      'e.route',
      'e.request_id',
    )
    .select(db.raw('(select count(*) from phi_access_event_patients n where n.event_id = e.id)::int as patients_shown'))
    .orderBy([
      { column: 'ep.occurred_at', order: 'desc' },
      { column: 'ep.event_id', order: 'desc' },
    ])
    .limit(filter.limit + 1);
  if (filter.afterId) {
    page.whereRaw(
      `(ep.occurred_at, ep.event_id) < (select c.occurred_at, c.event_id from phi_access_event_patients c where c.patient_id = ? and c.event_id = ?)`,
      [patientId, filter.afterId],
    );
  }
  const [rows, total] = await Promise.all([page, base.clone().count<{ n: string }[]>('* as n')]);
  const items: AccessLogEntry[] = rows.slice(0, filter.limit).map((r: Record<string, unknown>) => ({
    id: r.id as string,
    at: new Date(r.occurred_at as Date).toISOString(),
    userId: r.user_id as string,
    username: r.username as string,
    outcome: r.outcome as PhiAccessOutcome,
    kind: r.record_kind as PhiRecordKind,
    recordIds: r.record_ids as string[],
    patientsShown: r.patients_shown as number,
    method: r.method as string,
    route: r.route as string,
    requestId: (r.request_id as string | null) ?? null,
  }));
  return { items, total: Number(total[0]?.n ?? 0), more: rows.length > filter.limit };
}
