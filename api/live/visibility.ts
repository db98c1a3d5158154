import type { DomainEventType } from '../../common/domain-events';
import type { Actor, Role } from '../../common/roles';
import type { DomainEvent } from '../../db/domain-events';
import type { Db } from '../../db/knex';
import { careTeamUserIds } from '../../db/patients';

/** An event with what deciding its audience needs beyond the reader: the care team of a summary's patient. */
export interface JudgedEvent {
  event: DomainEvent;
  careTeam?: Set<string>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Reads, once per batch, the facts the rules below need (one query, whatever number of streams). */
export async function judgeable(db: Db, events: DomainEvent[]): Promise<JudgedEvent[]> {
  const patients = [
    ...new Set(events.filter((e) => e.type === 'summary.approved').map((e) => String(e.data.patientId ?? ''))),
  ].filter((id) => UUID.test(id));
  const teams = await careTeamUserIds(db, patients);
  return events.map((event) =>
    event.type === 'summary.approved' ? { event, careTeam: teams.get(String(event.data.patientId)) ?? new Set() } : { event },
  );
}

const holds = (actor: Actor, roles: readonly Role[]) => actor.roles.includes('admin') || roles.some((r) => actor.roles.includes(r));

const isMyTask = (actor: Actor, { event }: JudgedEvent) =>
  (typeof event.data.assigneeUserId === 'string' && event.data.assigneeUserId === actor.userId) ||
  (typeof event.data.assigneeRole === 'string' && actor.roles.includes(event.data.assigneeRole as Role));

/**
 * Who may receive each event type: the reader of the record it names, by the same rules as the routes that read
 * that record. A type without a rule here reaches no one, so a new event type is private until someone decides.
 */
const AUDIENCE: Record<DomainEventType, (actor: Actor, e: JudgedEvent) => boolean> = {
  // GET /documents/:number, /capas/:number and /samples/:accession are open to every signed-in role.
  'document.effective': () => true,
  'capa.closed': () => true,
  'sample.rejected': () => true,
  // A patient's record is its care team's clinicians' alone; admin does not pass (api/patient-access.ts).
  'summary.approved': (actor, e) => actor.roles.includes('clinician') && (e.careTeam?.has(actor.userId) ?? false),
  // The user's own tasks: assigned to them, or to a role they hold.
  'task.assigned': (actor, e) => isMyTask(actor, e),
  'task.overdue': (actor, e) => isMyTask(actor, e),
  // GET /backups/:backupId: IT operators and QA managers.
  'backup.verified': (actor) => holds(actor, ['it_operator', 'qa_manager']),
  // IDs only, but a sample's report is read by lab roles and its submitter; the stream goes to the lab roles.
  'report.released': (actor) => holds(actor, ['lab_technician', 'lab_director']),
};

export function mayReceive(actor: Actor, judged: JudgedEvent): boolean {
  const rule = AUDIENCE[judged.event.type] as ((actor: Actor, e: JudgedEvent) => boolean) | undefined;
  return rule ? rule(actor, judged) : false;
}
