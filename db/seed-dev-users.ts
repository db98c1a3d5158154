import { randomBytes } from 'node:crypto';
import type { Role } from '../common/roles';
import { createUser } from './identity';
import type { Db } from './knex';

export interface SeededUser {
  username: string;
  printedName: string;
  email: string;
  roles: Role[];
  apiKey: string;
  /** The signing password (Part 11 re-authentication); only its scrypt hash is stored. */
  password: string;
}

/** One user per role, so every process can be walked through by hand on a development machine. */
const DEV_USERS: { username: string; printedName: string; roles: Role[] }[] = [
  { username: 'admin', printedName: 'Morgan Ellis', roles: ['admin'] },
  { username: 'qa.manager', printedName: 'Priya Raman', roles: ['qa_manager'] },
  { username: 'doc.control', printedName: 'Helen Dubois', roles: ['document_control'] },
  { username: 'alice.author', printedName: 'Alice Moreau', roles: ['author'] },
  { username: 'rita.reviewer', printedName: 'Rita Okafor', roles: ['reviewer'] },
  { username: 'rick.reviewer', printedName: 'Rick Santos', roles: ['reviewer'] },
  { username: 'april.approver', printedName: 'April Lindqvist', roles: ['approver'] },
  { username: 'tom.tech', printedName: 'Tom Brennan', roles: ['lab_technician'] },
  { username: 'dana.director', printedName: 'Dr. Dana Whitaker', roles: ['lab_director'] },
  { username: 'carl.clinician', printedName: 'Dr. Carl Jensen', roles: ['clinician'] },
  { username: 'ivan.it', printedName: 'Ivan Petrov', roles: ['it_operator'] },
  { username: 'paula.privacy', printedName: 'Paula Nakamura', roles: ['privacy_officer'] },
];

export interface SeedDevUsersOptions {
  /**
   * Runs inside the seeding transaction, before it commits: if recording the secrets fails, no user is left behind
   * whose key and password nobody knows.
   */
  beforeCommit?: (users: SeededUser[]) => Promise<void> | void;
}

/** Creates the development users when the users table is empty; null when users already exist. */
export async function seedDevUsers(db: Db, options: SeedDevUsersOptions = {}): Promise<SeededUser[] | null> {
  return db.transaction(async (trx) => {
    // Two first starts against one database must not both find the table empty.
    await trx.raw('select pg_advisory_xact_lock(hashtext(?))', ['labflow.seed-dev-users']);
    if (await trx('users').first('id')) return null;
    const seeded: SeededUser[] = [];
    for (const user of DEV_USERS) {
      const email = `${user.username}@labflow.local`;
      const password = newSigningPassword();
      const { apiKey } = await createUser(trx, { ...user, email, password }, 'dev-seed');
      seeded.push({ ...user, email, apiKey, password });
    }
    await options.beforeCommit?.(seeded);
    return seeded;
  });
}

/** 9 random bytes are exactly 12 base64url characters. */
function newSigningPassword(): string {
  return randomBytes(9).toString('base64url');
}
