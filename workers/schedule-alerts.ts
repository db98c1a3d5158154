import type { ActivityDeps } from '../activities/deps';
import { deliverOutbox } from '../activities/notifications';
import { appendAudit } from '../db/audit';
import { queueNotifications } from '../db/notifications';
import { resolveRecipients } from '../db/recipients';
import type { Logger } from '../platform/logger';
import type { UndecodableSchedule } from './schedules';

export const UNDECODABLE_SCHEDULE_ACTION = 'schedule.undecodable';

/**
 * Tells IT operators and admins (audit trail, in-app, email) that a schedule on the namespace cannot be decoded with
 * this deployment's payload keys, and what they can do. Once per schedule, reason and day, however often workers
 * restart. The reason names a key ID, never payload content.
 */
export async function alertUndecodableSchedules(
  deps: Pick<ActivityDeps, 'db' | 'mailer'> & { mailDomain: string; log: Logger; now?: Date },
  schedules: UndecodableSchedule[],
): Promise<void> {
  const day = (deps.now ?? new Date()).toISOString().slice(0, 10);
  for (const { scheduleId, reason } of schedules) {
    const idempotencyKey = `${UNDECODABLE_SCHEDULE_ACTION}:${scheduleId}:${reason}:${day}`;
    const outboxIds = await deps.db.transaction(async (trx) => {
      await appendAudit(trx, {
        actor: 'system:worker',
        action: UNDECODABLE_SCHEDULE_ACTION,
        entityType: 'schedule',
        entityId: scheduleId,
        details: { reason, day },
        idempotencyKey,
      });
      return queueNotifications(
        trx,
        await resolveRecipients(trx, [
          { kind: 'role', role: 'it_operator' },
          { kind: 'role', role: 'admin' },
        ]),
        {
          idempotencyKey,
          kind: UNDECODABLE_SCHEDULE_ACTION,
          title: `Schedule ${scheduleId} cannot be read with this deployment's payload keys`,
          body:
            `The Temporal schedule "${scheduleId}" was made with a payload key this deployment does not hold (${reason}).\n` +
            'The worker left it unchanged and keeps running. Either add the key it was made with to PAYLOAD_KEYS (as an older key), ' +
            'or, if the schedule belongs to no installation that should run here, delete it in the Web UI or with ' +
            `"temporal schedule delete --schedule-id ${scheduleId}"; the next worker start then creates labflow's own.`,
        },
        deps.mailDomain,
      );
    });
    await deliverOutbox({ db: deps.db, mailer: deps.mailer }, outboxIds).catch((err: unknown) =>
      deps.log.warn({ err, scheduleId }, 'the undecodable-schedule alert stays in the outbox; email delivery failed'),
    );
  }
}
