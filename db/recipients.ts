import type { Knex } from 'knex';
import type { AssigneeRef } from '../common/assignees';

export interface Recipient {
  id: string;
  username: string;
  email: string;
  printed_name: string;
}

/** Active users behind a list of assignees: named users, and every holder of a named role. */
export async function resolveRecipients(trx: Knex | Knex.Transaction, refs: AssigneeRef[]): Promise<Recipient[]> {
  const userIds = refs.flatMap((r) => (r.kind === 'user' ? [r.userId] : []));
  const roles = refs.flatMap((r) => (r.kind === 'role' ? [r.role] : []));
  if (userIds.length === 0 && roles.length === 0) return [];
  return trx('users')
    .select('id', 'username', 'email', 'printed_name')
    .where('active', true)
    .andWhere((q) => {
      if (userIds.length) q.orWhereIn('id', userIds);
      if (roles.length) q.orWhereRaw('roles && ?::text[]', [roles]);
    })
    .orderBy('username');
}
