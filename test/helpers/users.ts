import { randomBytes } from 'node:crypto';
import type { Actor, Role } from '../../common/roles';
import { createUser, toActor } from '../../db/identity';
import type { Db } from '../../db/knex';
import { testEnv } from '../setup/env';

export interface TestUser {
  username: string;
  apiKey: string;
  password: string;
  actor: Actor;
}

/** A real user with a real API key and signing password; usernames are unique per call so tests never collide. */
export async function makeUser(name: string, roles: Role[], db: Db = testEnv().db): Promise<TestUser> {
  const username = `${name}.${randomBytes(3).toString('hex')}`;
  const password = `pw-${randomBytes(9).toString('base64url')}`;
  const { user, apiKey } = await createUser(db, {
    username,
    printedName: `${name[0].toUpperCase()}${name.slice(1)} Tester`,
    email: `${username}@lab.test`,
    roles,
    password,
  });
  return { username, apiKey, password, actor: toActor(user) };
}

export async function makeUsers<K extends string>(spec: Record<K, Role[]>, db: Db = testEnv().db): Promise<Record<K, TestUser>> {
  const entries = await Promise.all(Object.entries(spec).map(async ([name, roles]) => [name, await makeUser(name, roles as Role[], db)]));
  return Object.fromEntries(entries);
}
