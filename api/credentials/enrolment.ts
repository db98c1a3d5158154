import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { Actor } from '../../common/roles';
import { appendAudit } from '../../db/audit';
import { lockEnrolmentToken, issueEnrolmentToken, markEnrolmentTokenUsed } from '../../db/enrolment-tokens';
import { checkSigningPassword, createUser, type NewUser } from '../../db/identity';
import { passwordWasUsed, retireSigningPassword, setSigningPassword } from '../../db/signing-passwords';
import type { ApiDeps } from '../deps';
import { Problem, problems } from '../problem';
import { deliverQueuedEmails } from '../temporal/notifications';
import { alertSigningLocked } from './alerts';
import { passwordRuleBroken } from './password-policy';
import { DEFAULT_CREDENTIAL_SETTINGS, type CredentialSettings } from './settings';

type Deps = Pick<ApiDeps, 'db' | 'temporal' | 'config' | 'log'>;

const settingsOf = (deps: Pick<ApiDeps, 'config'>): CredentialSettings => deps.config.credentials ?? DEFAULT_CREDENTIAL_SETTINGS;

interface Person {
  id: string;
  username: string;
  printed_name: string;
  email: string;
}

/**
 * Queues the enrolment email in the outbox; the row is flagged so that the delivery blanks the body (the token)
 * once the relay has accepted it. No in-app notification: that would keep the token.
 */
async function queueEnrolmentEmail(
  trx: Knex.Transaction,
  deps: Deps,
  person: Person,
  enrolment: { id: string; token: string; expiresAt: Date },
) {
  const url = settingsOf(deps).enrolmentUrl;
  const body = [
    `Hello ${person.printed_name},`,
    '',
    `labflow has an account for you (username ${person.username}). Set your own signing password, the one you will`,
    'give each time you sign a record electronically, with this one-time enrolment token:',
    '',
    `    ${enrolment.token}`,
    '',
    `It works once, until ${enrolment.expiresAt.toISOString()}. Send it with your new password:`,
    '',
    `    curl -s -X POST ${url} -H 'content-type: application/json' \\`,
    `      -d '{"token":"${enrolment.token}","password":"<your new signing password>"}'`,
    '',
    'Nobody else, not even an administrator, learns your signing password. If you did not expect this email, tell your',
    'IT operator.',
    '',
  ].join('\n');
  const [row] = await trx('email_outbox')
    .insert({
      idempotency_key: `enrolment:${enrolment.id}`,
      message_id: `<${randomUUID()}@${deps.config.mailDomain ?? 'localhost'}>`,
      to_address: `${person.printed_name} <${person.email}>`,
      subject: '[labflow] Set your signing password',
      body,
      scrub_after_send: true,
    })
    .returning(['id']);
  return row.id as string;
}

/** Issues the token, queues its email and audits why (a new user, or a reset), all in the caller's transaction. */
async function startEnrolment(trx: Knex.Transaction, deps: Deps, actor: Actor, person: Person, reason: 'created' | 'reset') {
  const enrolment = await issueEnrolmentToken(trx, person.id, actor.username, settingsOf(deps).enrolmentTokenTtlMs);
  const outboxId = await queueEnrolmentEmail(trx, deps, person, enrolment);
  await appendAudit(trx, {
    actorId: actor.userId,
    actor: actor.username,
    action: 'user.enrolment_started',
    entityType: 'user',
    entityId: person.username,
    details: { expiresAt: enrolment.expiresAt.toISOString(), reason },
  });
  return { id: enrolment.id, expiresAt: enrolment.expiresAt, outboxId };
}

/**
 * Creates a user without a signing password and emails them a one-time enrolment token; the answer carries their
 * first API key (shown this once) and when the token expires, never the token.
 */
export async function createUserWithEnrolment(deps: Deps, actor: Actor, user: Omit<NewUser, 'password'>) {
  const settings = settingsOf(deps);
  const created = await deps.db.transaction(async (trx) => {
    const { user: row, apiKey } = await createUser(trx, user, actor.username, { keyLifetimeMs: settings.apiKeyDefaultLifetimeMs });
    const enrolment = await startEnrolment(trx, deps, actor, row, 'created');
    return { row, apiKey, enrolment };
  });
  await deliverQueuedEmails(deps, `enrolment:${created.enrolment.id}`, [created.enrolment.outboxId]);
  return { user: created.row, apiKey: created.apiKey, enrolmentExpiresAt: created.enrolment.expiresAt };
}

/**
 * Resets a person's signing password: the current one stops working at once (its hash is kept against reuse) and
 * a new enrolment token is emailed to them; an earlier unused token stops working.
 */
export async function resetSigningPassword(deps: Deps, actor: Actor, username: string) {
  const result = await deps.db.transaction(async (trx) => {
    const person: (Person & { active: boolean }) | undefined = await trx('users')
      .where({ username })
      .forNoKeyUpdate()
      .first('id', 'username', 'printed_name', 'email', 'active');
    if (!person) throw problems.notFound(`user ${username}`);
    if (!person.active) throw problems.conflict('user-inactive', `user ${username} is deactivated; reactivate them first`);
    await retireSigningPassword(trx, person.id, settingsOf(deps).passwordHistory);
    const enrolment = await startEnrolment(trx, deps, actor, person, 'reset');
    return { person, enrolment };
  });
  await deliverQueuedEmails(deps, `enrolment:${result.enrolment.id}`, [result.enrolment.outboxId]);
  return { username: result.person.username, emailedTo: result.person.email, expiresAt: result.enrolment.expiresAt };
}

/** Refuses a new signing password that breaks a rule of the policy: 422 naming the rule. */
async function checkPolicy(trx: Knex.Transaction, deps: Deps, user: { id: string; username: string }, password: string) {
  const settings = settingsOf(deps);
  const broken = passwordRuleBroken(password, { minLength: settings.passwordMinLength, username: user.username });
  if (broken) throw problems.unprocessable(broken.rule, broken.detail, { rule: broken.rule });
  if (await passwordWasUsed(trx, user.id, password, settings.passwordHistory)) {
    throw problems.unprocessable('password-reused', `a signing password may not repeat any of your last ${settings.passwordHistory}`, {
      rule: 'password-reused',
    });
  }
}

/** Sets the signing password of the token's owner and uses the token up; nothing is written on a refusal. */
export async function enrolWithToken(deps: Deps, token: string, password: string): Promise<{ username: string }> {
  return deps.db.transaction(async (trx) => {
    const row = await lockEnrolmentToken(trx, token);
    if (!row) throw problems.notFound('this enrolment token');
    if (row.used_at)
      throw problems.conflict('enrolment-token-used', 'this enrolment token has been used already; ask an admin for a new one');
    if (row.superseded_at) throw problems.conflict('enrolment-token-superseded', 'a newer enrolment token replaced this one');
    if (row.expires_at.getTime() <= Date.now()) {
      throw problems.conflict(
        'enrolment-token-expired',
        `this enrolment token expired at ${row.expires_at.toISOString()}; ask an admin for a new one`,
      );
    }
    if (!row.active) throw problems.conflict('user-inactive', 'the account this token belongs to is deactivated');
    await checkPolicy(trx, deps, { id: row.user_id, username: row.username }, password);
    await setSigningPassword(trx, row.user_id, password, settingsOf(deps).passwordHistory);
    await markEnrolmentTokenUsed(trx, row.id);
    await appendAudit(trx, {
      actorId: row.user_id,
      actor: row.username,
      action: 'user.signing_password_set',
      entityType: 'user',
      entityId: row.username,
      details: { how: 'enrolment' },
    });
    return { username: row.username };
  });
}

/**
 * Changes the caller's signing password; the current one is re-verified like a signature (wrong ones count towards
 * the signing lock), and an expired one may still be changed.
 */
export async function changeSigningPassword(deps: Deps, actor: Actor, current: string, next: string): Promise<void> {
  const check = await checkSigningPassword(
    deps.db,
    actor,
    current,
    deps.config.signing,
    { entityType: 'user', entityId: actor.username },
    { ignoreAge: true },
  );
  if (!check.ok) {
    if (check.reason === 'not_set') {
      throw problems.conflict('signing-password-not-set', 'you have no signing password yet: use the enrolment token emailed to you');
    }
    if (check.reason === 'locked') {
      throw new Problem(
        423,
        'signing-locked',
        'Signing is locked',
        `too many wrong passwords; locked until ${check.lockedUntil.toISOString()}`,
      );
    }
    if (check.reason === 'wrong_password' && check.lockedUntil) {
      await alertSigningLocked(deps, actor, check.lockedUntil);
    }
    throw new Problem(403, 'signature-password-invalid', 'Password not accepted', 'the current signing password is wrong');
  }
  await deps.db.transaction(async (trx) => {
    await trx('users').where({ id: actor.userId }).forNoKeyUpdate().first('id');
    await checkPolicy(trx, deps, { id: actor.userId, username: actor.username }, next);
    await setSigningPassword(trx, actor.userId, next, settingsOf(deps).passwordHistory);
    await appendAudit(trx, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'user.signing_password_set',
      entityType: 'user',
      entityId: actor.username,
      details: { how: 'change' },
    });
  });
}
