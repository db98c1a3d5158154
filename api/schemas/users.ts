import { z } from 'zod';
import { flagParam, pagination, role, text, username } from './common';

export const newUserBody = z.strictObject({
  username,
  printedName: text(120),
  email: z.email(),
  roles: z.array(role).min(1).max(10),
});

export const userParams = z.object({ username });

/** Name and email only: roles and the active flag change through the signed lifecycle routes. */
export const userEditBody = z
  .strictObject({
    printedName: text(120).optional(),
    email: z.email().optional(),
    roles: z.array(role).min(1).max(10).optional(),
    active: z.boolean().optional(),
  })
  .refine((body) => Object.values(body).some((v) => v !== undefined), { message: 'send at least one of printedName, email' });

export const listUsersQuery = pagination.extend({ role: role.optional(), active: flagParam.optional() });

/** What every signed lifecycle change carries: the admin's signing password, a reason, the version they saw. */
const signedChange = {
  password: z.string().min(1).max(200),
  reason: text(500),
  expectedVersion: z
    .string()
    .regex(/^[0-9a-f]{16}$/, 'the version GET /users/{username} answered')
    .optional(),
};

export const rolesBody = z.strictObject({ roles: z.array(role).min(1).max(10), ...signedChange });
export const lifecycleBody = z.strictObject(signedChange);
