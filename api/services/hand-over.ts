import { userDeactivatedSignal, type DeactivatedUser } from '../../common/deactivation';
import type { Actor } from '../../common/roles';
import { handOverEndedSampleTasks, runsToTell, type RunsToTell } from '../../db/open-work';
import type { ApiDeps } from '../deps';
import { deliverQueuedEmails } from '../temporal/notifications';

/**
 * Tells every run that may hold something of a deactivated user's: each hands it over to the people its process
 * names and records it (believed only because Postgres shows the user inactive). A run that ended meanwhile has
 * nothing to hand over; what the user still holds in sample runs that ended (a rejected specimen's recollection
 * request) is handed over here, after the runs were told. Answers the runs told, per process.
 */
export async function handOverOpenWork(
  deps: Pick<ApiDeps, 'db' | 'temporal' | 'config' | 'log'>,
  user: DeactivatedUser,
  by?: Actor,
): Promise<RunsToTell> {
  const runs = await runsToTell(deps.db, user);
  const ids = [...runs.capa, ...runs.document, ...runs.sample, ...runs.summary, ...runs.training];
  await Promise.all(
    ids.map((id) =>
      deps.temporal.workflow
        .getHandle(id)
        .signal(userDeactivatedSignal, { userId: user.userId, username: user.username })
        .catch(() => undefined),
    ),
  );
  const ended = await handOverEndedSampleTasks(deps.db, {
    user,
    by: by?.username ?? 'system:user-lifecycle',
    byId: by?.userId ?? null,
    mailDomain: deps.config.mailDomain ?? 'localhost',
  });
  await deliverQueuedEmails(deps, `sample-hand-over:${user.userId}:${ended.tasks[0] ?? ''}`, ended.outboxIds);
  return runs;
}
