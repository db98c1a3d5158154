import { z } from 'zod';
import { durationMs } from '../../common/durations';
import { listApiKeys } from '../../db/api-keys';
import { createApiKey, findKeyOwner, revokeApiKey, rotateApiKey, type KeyOwner } from '../credentials/api-keys';
import { changeSigningPassword, resetSigningPassword } from '../credentials/enrolment';
import { MAX_PASSWORD_LENGTH } from '../credentials/password-policy';
import type { ApiDeps } from '../deps';
import type { Actor } from '../../common/roles';
import type { Authenticator } from '../auth';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import * as R from '../schemas/responses';
import { durationString, isoDateTime, text, username } from '../schemas/common';

const keyParams = z.object({ keyId: z.uuid('not an API key ID') });
const userKeyParams = z.object({ username, keyId: z.uuid('not an API key ID') });
const userParams = z.object({ username });
const newKeyBody = z.strictObject({ name: text(80), expiresAt: isoDateTime.optional() });
const rotateBody = z.strictObject({ overlap: durationString.optional() });
const passwordChangeBody = z.strictObject({
  currentPassword: z.string().min(1).max(MAX_PASSWORD_LENGTH),
  newPassword: z.string().min(1).max(10_000),
});

const me = (actor: Actor): KeyOwner => ({ id: actor.userId, username: actor.username });

/**
 * This process forgets the key as soon as the change commits; the others do when the notice on the credentials
 * channel reaches them.
 */
function forgetHere(deps: ApiDeps, keyPrefix: string): void {
  (deps.authenticate as Partial<Authenticator>).invalidate?.({ keyPrefix });
}

/** Signing password changes and resets, and API keys: the caller's own (/me) and, for admins, anyone's. */
export function credentialRoutes(deps: ApiDeps): RouteSpec[] {
  const { db } = deps;
  return [
    route({
      method: 'post',
      path: '/me/signing-password',
      response: { 204: null }, problems: [403, 409, 422, 423],
      summary: 'Change your signing password: the current one, then a new one that meets the password policy (422 names the rule broken)',
      tag: 'identity',
      roles: 'any',
      body: passwordChangeBody,
      handler: async ({ actor, body, ctx }) => {
        await changeSigningPassword(deps, actor, body.currentPassword, body.newPassword);
        ctx.status = 204;
      },
    }),
    route({
      method: 'post',
      path: '/users/:username/enrolment',
      response: { 201: R.enrolmentIssued }, problems: [409],
      summary: "Reset a user's signing password (admin): the old one stops working and a new one-time enrolment token is emailed to them",
      tag: 'identity',
      roles: ['admin'],
      params: userParams,
      handler: async ({ actor, params, ctx }) => {
        const reset = await resetSigningPassword(deps, actor, params.username);
        ctx.status = 201;
        ctx.body = { username: reset.username, emailedTo: reset.emailedTo, expiresAt: reset.expiresAt.toISOString() };
      },
    }),
    route({
      method: 'get',
      path: '/me/api-keys',
      response: R.list(R.apiKey),
      summary: 'Your API keys: name, prefix, expiry, last use, state (never the key)',
      tag: 'identity',
      roles: 'any',
      handler: async ({ actor, ctx }) => {
        ctx.body = { items: await listApiKeys(db, actor.userId) };
      },
    }),
    route({
      method: 'post',
      path: '/me/api-keys',
      response: { 201: R.newApiKey }, problems: [409, 422],
      summary: 'Create a named API key; the key is in this answer only. Expiry defaults to API_KEY_DEFAULT_LIFETIME',
      tag: 'identity',
      roles: 'any',
      body: newKeyBody,
      handler: async ({ actor, body, ctx }) => {
        ctx.status = 201;
        ctx.body = await createApiKey(deps, actor, me(actor), {
          name: body.name,
          expiresAt: body.expiresAt ? new Date(body.expiresAt) : undefined,
        });
      },
    }),
    route({
      method: 'post',
      path: '/me/api-keys/:keyId/rotate',
      response: { 201: R.rotatedApiKey }, problems: [409],
      summary: 'Replace one of your keys with a new one (shown once); the old one is revoked at once, or after the overlap asked for',
      tag: 'identity',
      roles: 'any',
      params: keyParams,
      body: rotateBody,
      handler: async ({ actor, params, body, ctx }) => {
        ctx.status = 201;
        const rotated = await rotateApiKey(deps, actor, me(actor), params.keyId, body.overlap ? durationMs(body.overlap) : 0);
        forgetHere(deps, rotated.previous.prefix);
        ctx.body = rotated;
      },
    }),
    route({
      method: 'delete',
      path: '/me/api-keys/:keyId',
      response: R.apiKey, problems: [409],
      summary: 'Revoke one of your keys: every API process refuses it at once',
      tag: 'identity',
      roles: 'any',
      params: keyParams,
      handler: async ({ actor, params, ctx }) => {
        const revoked = await revokeApiKey(deps, actor, me(actor), params.keyId);
        forgetHere(deps, revoked.prefix);
        ctx.body = revoked;
      },
    }),
    route({
      method: 'get',
      path: '/users/:username/api-keys',
      response: R.list(R.apiKey),
      summary: "A user's API keys (admin)",
      tag: 'identity',
      roles: ['admin'],
      params: userParams,
      handler: async ({ params, ctx }) => {
        const owner = await findKeyOwner(db, params.username);
        ctx.body = { items: await listApiKeys(db, owner.id) };
      },
    }),
    route({
      method: 'post',
      path: '/users/:username/api-keys',
      response: { 201: R.newApiKey }, problems: [409, 422],
      summary:
        "Issue an API key to an active user (admin): after a reactivation (their old keys stay revoked) or for an instrument's service account; the key is in this answer only",
      tag: 'identity',
      roles: ['admin'],
      params: userParams,
      body: newKeyBody,
      handler: async ({ actor, params, body, ctx }) => {
        const owner = await findKeyOwner(db, params.username);
        if (!owner.active) {
          throw problems.unprocessable('user-inactive', `${params.username} is deactivated: reactivate them first`, { rule: 'user-inactive' });
        }
        ctx.status = 201;
        ctx.body = await createApiKey(deps, actor, owner, { name: body.name, expiresAt: body.expiresAt ? new Date(body.expiresAt) : undefined });
      },
    }),
    route({
      method: 'delete',
      path: '/users/:username/api-keys/:keyId',
      response: R.apiKey, problems: [409],
      summary: "Revoke a user's API key (admin), e.g. one that leaked",
      tag: 'identity',
      roles: ['admin'],
      params: userKeyParams,
      handler: async ({ actor, params, ctx }) => {
        const revoked = await revokeApiKey(deps, actor, await findKeyOwner(db, params.username), params.keyId);
        forgetHere(deps, revoked.prefix);
        ctx.body = revoked;
      },
    }),
  ];
}
