import type Router from '@koa/router';
import { z } from 'zod';
import { readJsonBody } from '../body';
import { enrolWithToken } from '../credentials/enrolment';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { parseOrProblem } from '../route';

export const enrolmentBody = z.strictObject({
  token: z.string().regex(/^lfe_[A-Za-z0-9_-]{43}$/, 'not an enrolment token'),
  password: z.string().min(1).max(10_000),
});

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
