import type { z } from 'zod';
import type { Actor, Role } from '../../common/roles';
import type { RunsToTell } from '../../db/open-work';
import {
  changeRoles,
  deactivateUser,
  lifecycleContentHash,
  reactivateUser,
  type LifecycleRefusal,
  type LifecycleResult,
} from '../../db/user-lifecycle';
import type { ApiDeps } from '../deps';
import { problems, type Problem } from '../problem';
import type { lifecycleBody } from '../schemas/users';
import { verifySigner } from '../signing';
import { deliverQueuedEmails } from '../temporal/notifications';
import { handOverOpenWork } from './hand-over';
import { trainingAfterRoleChange } from './training';

type Body = z.infer<typeof lifecycleBody>;
type Kind = 'roles' | 'deactivate' | 'reactivate';

/**
 * One signed change to a user's lifecycle: the admin re-authenticates with their signing password (a wrong one
 * 403, locked 423), the change and its audit event, keys and sessions, QA's alert are one transaction; then QA's
 * emails go out and, for a deactivation, every process is told to hand the user's open work over.
 */
export async function signedUserChange(
  deps: ApiDeps,
  admin: Actor,
  username: string,
  kind: Kind,
  body: Body & { roles?: Role[] },
): Promise<LifecycleResult & { handedOver?: RunsToTell; training?: { cancelled: string[]; started: string[] } }> {
  const change = kind === 'roles' ? { roles: body.roles ?? [] } : { active: kind === 'reactivate' };
  const signature = await verifySigner(
    deps,
    admin,
    { password: body.password, meaning: 'responsibility', contentHash: lifecycleContentHash(username, change, body.expectedVersion) },
    { entityType: 'user', entityId: username },
  );
  const request = { admin, username, reason: body.reason, expectedVersion: body.expectedVersion, signature, mailDomain: deps.config.mailDomain ?? 'localhost' };
  const outcome =
    kind === 'roles'
      ? await changeRoles(deps.db, { ...request, roles: body.roles ?? [] })
      : kind === 'deactivate'
        ? await deactivateUser(deps.db, request)
        : await reactivateUser(deps.db, request);
  if ('refused' in outcome) throw refusalProblem(outcome, username);
  await deliverQueuedEmails(deps, `user-${kind}:${outcome.user.id}:${signature.signedAt}`, outcome.outboxIds);
  if (kind === 'roles') return { ...outcome, training: await trainingAfterRoleChange(deps, outcome.user) };
  if (kind !== 'deactivate') return outcome;
  const handedOver = await handOverOpenWork(deps, { userId: outcome.user.id, username: outcome.user.username }, admin);
  return { ...outcome, handedOver };
}

function refusalProblem(refusal: LifecycleRefusal, username: string): Problem {
  switch (refusal.refused) {
    case 'not_found':
      return problems.notFound(`user ${username}`);
    case 'stale':
      return problems.conflict('stale-user', `${username} changed since you read them; read them again (version ${refusal.version})`, {
        version: refusal.version,
      });
    case 'unchanged':
      return problems.conflict('illegal-transition', refusal.detail);
    case 'self_deactivation':
      return problems.unprocessable('self-deactivation', 'rule self-deactivation: an admin cannot deactivate their own account');
    case 'last_active_admin':
      return problems.unprocessable('last-active-admin', `rule last-active-admin: ${username} is the last active admin; make another admin first`);
  }
}
