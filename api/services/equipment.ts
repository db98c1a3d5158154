import type { WorkflowHandle } from '@temporalio/client';
import type { z } from 'zod';
import { DEFAULT_CALIBRATION_REMINDERS, type InstrumentInput } from '../../common/equipment';
import { workflowIds } from '../../common/ids';
import type { Actor } from '../../common/roles';
import { EntityId, EntityType, Stage } from '../../common/search-attributes';
import { appendAudit } from '../../db/audit';
import { findInstrument, type InstrumentRow } from '../../db/equipment';
import { afterRow, decodeCursor, encodeCursor } from '../../db/keyset';
import type { instrumentWorkflow } from '../../workflows';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import type { registerInstrumentBody } from '../schemas/equipment';

type Db = ApiDeps['db'];
const iso = (d: Date | string | null | undefined) => (d ? new Date(d).toISOString() : null);
const isUniqueViolation = (err: unknown) => (err as { code?: string }).code === '23505';

/**
 * Registers an instrument and starts its run, `instrument:<code>`, in one transaction: a run that cannot start
 * leaves no row behind, and a code already registered is 409.
 */
export async function registerInstrument(deps: Pick<ApiDeps, 'db' | 'temporal' | 'config'>, actor: Actor, body: z.infer<typeof registerInstrumentBody>) {
  const workflowId = workflowIds.instrument(body.code);
  const reminderBefore = body.calibrationReminders ?? DEFAULT_CALIBRATION_REMINDERS;
  try {
    await deps.db.transaction(async (trx) => {
      const [row] = await trx('instruments')
        .insert({
          code: body.code,
          workflow_id: workflowId,
          name: body.name,
          manufacturer: body.manufacturer,
          model: body.model,
          serial_number: body.serialNumber,
          software_version: body.softwareVersion ?? null,
          firmware_version: body.firmwareVersion ?? null,
          location: body.location,
          reminder_before: reminderBefore,
          registered_by: actor.userId,
        })
        .returning('id');
      await appendAudit(trx, {
        actorId: actor.userId,
        actor: actor.username,
        action: 'instrument.registered',
        entityType: 'instrument',
        entityId: body.code,
        details: { workflowId, serialNumber: body.serialNumber, location: body.location, reminderBefore },
      });
      const input: InstrumentInput = { instrumentId: row.id, code: body.code, reminderBefore };
      await deps.temporal.workflow.start<typeof instrumentWorkflow>('instrumentWorkflow', {
        workflowId,
        taskQueue: deps.config.taskQueue,
        args: [input],
        workflowIdConflictPolicy: 'FAIL',
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        typedSearchAttributes: [
          { key: EntityType, value: 'instrument' },
          { key: EntityId, value: body.code },
          { key: Stage, value: 'commissioning' },
        ],
      });
    });
  } catch (err) {
    if (isUniqueViolation(err) || (err as Error)?.name === 'WorkflowExecutionAlreadyStartedError') {
      throw problems.conflict('instrument-exists', `instrument ${body.code} is already registered`);
    }
    throw err;
  }
  return { code: body.code, workflowId, state: 'commissioning' as const, location: body.location };
}

export async function loadInstrument(db: Db, code: string): Promise<InstrumentRow> {
  const row = await findInstrument(db, code);
  if (!row) throw problems.notFound(`instrument ${code}`);
  return row;
}

/** The run a person's action goes to; a retired instrument takes none (409). */
export function instrumentRun(deps: Pick<ApiDeps, 'temporal'>, row: InstrumentRow): WorkflowHandle {
  if (row.state === 'retired') throw problems.conflict('instrument-retired', `instrument ${row.code} is retired; nothing more can be done`);
  return deps.temporal.workflow.getHandle(row.workflow_id);
}

/** Columns every list selects: the register's row, its current certificate, and usability judged by PostgreSQL now. */
const LIST_COLUMNS = [
  'i.id',
  'i.code',
  'i.name',
  'i.location',
  'i.state',
  'i.reasons',
  'i.calibration_valid_to',
  'c.valid_from as calibration_valid_from',
] as const;

function rowOf(r: Record<string, unknown> & { calibration_valid: boolean }) {
  const reasons = r.reasons as string[];
  const state = r.state as string;
  const usable = state === 'in_service' && reasons.length === 0 && r.calibration_valid;
  const shown = state === 'in_service' && !r.calibration_valid ? ['calibration_expired'] : reasons;
  const statusLabel =
    state === 'in_service' && usable ? 'in service' : state === 'in_service' || state === 'out_of_service' ? `out of service: ${shown.join(', ')}` : state;
  return {
    code: r.code as string,
    name: r.name as string,
    location: r.location as string,
    state,
    reasons,
    usable,
    statusLabel,
    lastCalibration: iso(r.calibration_valid_from as Date | null),
    nextCalibrationDue: iso(r.calibration_valid_to as Date | null),
  };
}

const listQuery = (db: Db) =>
  db('instruments as i')
    .leftJoin('instrument_calibrations as c', 'c.id', 'i.current_certificate_id')
    .select(...LIST_COLUMNS, db.raw('coalesce(i.calibration_valid_to > now(), false) as calibration_valid'));

/** A keyset page of rows: one more than asked tells whether there is a next page; the cursor names the last row. */
async function paged(query: ReturnType<typeof listQuery>, sort: string, limit: number) {
  const rows = await query.limit(limit + 1);
  const more = rows.length > limit;
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items: items.map(rowOf), nextCursor: more && last ? encodeCursor({ sort, id: last.id }) : null };
}

/** The row a keyset cursor of this list names; a cursor of another list (or none this API gave) is 400. */
export function cursorOf(text: string | undefined, sort: string): string | null {
  if (text === undefined) return null;
  const cursor = decodeCursor(text);
  if (!cursor || cursor.sort !== sort) throw problems.validation('the cursor is not one this list gave', [{ field: 'cursor', detail: 'not a cursor of this list' }]);
  return cursor.id;
}

/** The equipment list with status labels, by identifier, a keyset page at a time. */
export async function listInstruments(db: Db, q: { state?: string; limit: number; cursor?: string }) {
  const after = cursorOf(q.cursor, 'code');
  const query = listQuery(db).orderBy('i.code');
  if (q.state) query.where('i.state', q.state);
  if (after) query.whereRaw(afterRow(['i.code'], false, 'instruments', 'i'), [after]);
  return paged(query, 'code', q.limit);
}

/** Instruments in use whose certificate ends within `days` (or has ended), soonest first, a keyset page at a time. */
export async function calibrationsDue(db: Db, q: { days: number; limit: number; cursor?: string }) {
  const after = cursorOf(q.cursor, 'due');
  const query = listQuery(db)
    .whereNot('i.state', 'retired')
    .whereNotNull('i.calibration_valid_to')
    .whereRaw('i.calibration_valid_to < now() + make_interval(days => ?)', [q.days])
    .orderBy([{ column: 'i.calibration_valid_to' }, { column: 'i.id' }]);
  if (after) query.whereRaw(afterRow(['i.calibration_valid_to', 'i.id'], false, 'instruments', 'i'), [after]);
  return paged(query, 'due', q.limit);
}

/** One instrument as the register shows it (17025 6.4.13): identity, state, usability now, calibrations, history. */
export async function instrumentView(db: Db, code: string) {
  const row = await loadInstrument(db, code);
  const listed = await listQuery(db).where('i.id', row.id).first();
  const { now } = await db.first(db.raw('now() as now'));
  const calibrations = await db('instrument_calibrations as c')
    .join('users as p', 'p.id', 'c.prepared_by')
    .join('users as r', 'r.id', 'c.reviewed_by')
    .where('c.instrument_id', row.id)
    .orderBy('c.recorded_at', 'desc')
    .select('c.*', 'p.username as prepared_by_name', 'r.username as reviewed_by_name');
  const events = await db('instrument_events as e')
    .leftJoin('users as u', 'u.id', 'e.actor_id')
    .where('e.instrument_id', row.id)
    .orderBy('e.occurred_at', 'desc')
    .limit(50)
    .select('e.kind', 'e.passed', 'e.details', 'e.occurred_at', 'u.username');
  const plans = await db('instrument_maintenance_plans').where({ instrument_id: row.id }).orderBy('due_at');
  const failure = events.find((e) => e.kind === 'defect' || (e.kind === 'qc' && e.passed === false));
  return {
    ...rowOf(listed),
    workflowId: row.workflow_id,
    manufacturer: row.manufacturer,
    model: row.model,
    serialNumber: row.serial_number,
    softwareVersion: row.software_version,
    firmwareVersion: row.firmware_version,
    calibrationReminders: row.reminder_before,
    asOf: iso(now)!,
    calibrations: calibrations.map((c) => ({
      certificateNumber: c.certificate_number,
      validFrom: iso(c.valid_from)!,
      validTo: iso(c.valid_to)!,
      documentHash: c.document_hash,
      results: c.results,
      preparedBy: c.prepared_by_name,
      reviewedBy: c.reviewed_by_name,
      recordedAt: iso(c.recorded_at)!,
      superseded: c.superseded_at !== null,
    })),
    maintenancePlans: plans.map((p) => ({ id: p.id, description: p.description, dueAt: iso(p.due_at)!, doneAt: iso(p.done_at) })),
    events: events.map((e) => ({ kind: e.kind, passed: e.passed, by: e.username ?? null, at: iso(e.occurred_at)!, details: e.details })),
    lastFailure: failure
      ? {
          kind: failure.kind,
          at: iso(failure.occurred_at)!,
          impactedResults: failure.details.impactedResults ?? [],
          capa: failure.details.capa?.workflowId ?? null,
        }
      : null,
  };
}
