import type Router from '@koa/router';
import { z } from 'zod';
import { readJsonBody } from '../body';
import { enrolWithToken } from '../credentials/enrolment';
import type { ApiDeps } from '../deps';
import type { DocumentedOperation } from '../openapi';
import { problems } from '../problem';
import { parseOrProblem } from '../route';

export const enrolmentBody = z.strictObject({
  token: z.string().regex(/^lfe_[A-Za-z0-9_-]{43}$/, 'not an enrolment token'),
  password: z.string().min(1).max(10_000),
});

/** Enrolment, for the OpenAPI document: the token in the body is the credential. */
export const enrolmentOperations: DocumentedOperation[] = [
  {
    method: 'post',
    path: '/api/v1/enrolment',
    summary: 'Set my own signing password with the one-time enrolment token emailed to me',
    tag: 'identity',
    description: 'Not API-key authenticated: the emailed token is the credential, used up by this call. 422 names the password rule refused.',
    security: [],
    body: enrolmentBody,
    responses: {
      200: z.object({ username: z.string(), signingPassword: z.literal('set') }),
      ...Object.fromEntries([400, 404, 409, 413, 415, 422, 503].map((status) => [status, 'problem' as const])),
    },
  },
];

/**
 * POST /api/v1/enrolment — not API-key authenticated: the one-time token emailed to the person is the credential.
 * The person sets their own signing password; the token is used up. Wrong tokens count as failed credentials.
 */
export function mountEnrolment(router: Router, deps: ApiDeps): void {
  router.post('/enrolment', async (ctx) => {
    const raw = await readJsonBody(ctx, deps.config.bodyLimitBytes);
    if (raw === undefined) throw problems.validation('send {"token", "password"}', [{ field: 'body', detail: 'required' }]);
    const body = parseOrProblem(enrolmentBody, raw, 'body');
    const { username } = await enrolWithToken(deps, body.token, body.password);
    ctx.state.actor = username;
    ctx.body = { username, signingPassword: 'set' };
  });
}
