import { userDeactivatedSignal, type DeactivatedUser } from '../../common/deactivation';
import { runsToTell, type RunsToTell } from '../../db/open-work';
import type { ApiDeps } from '../deps';

/**
 * Tells every run that may hold something of a deactivated user's: each hands it over to the people its process
 * names and records it (believed only because Postgres shows the user inactive). A run that ended meanwhile has
 * nothing to hand over. Answers the runs told, per process.
 */
export async function handOverOpenWork(deps: Pick<ApiDeps, 'db' | 'temporal'>, user: DeactivatedUser): Promise<RunsToTell> {
  const runs = await runsToTell(deps.db, user);
  const ids = [...runs.capa, ...runs.document, ...runs.sample, ...runs.summary];
  await Promise.all(
    ids.map((id) =>
      deps.temporal.workflow
        .getHandle(id)
        .signal(userDeactivatedSignal, { userId: user.userId, username: user.username })
        .catch(() => undefined),
    ),
  );
  return runs;
}
