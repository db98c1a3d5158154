import { createHash } from 'node:crypto';
import { authorisationStatement, COMPETENCE_OFFICERS, DEFAULT_COMPETENCY_POLICY } from '../../common/competence';
import type { Actor } from '../../common/roles';
import { activityRequirements, competenceOf, findAuthorisation, grantAuthorisation, recordAssessment, revokeAuthorisation, setActivityRequirements } from '../../db/competence';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import * as R from '../schemas/responses';
import { assessmentBody, authorisationBody, authorisationParams, personParams, requirementsBody, revokeBody } from '../schemas/competence';
import { activityParams } from '../schemas/training';
import { verifySigner } from '../signing';

const tag = 'competence';
const OFFICERS = COMPETENCE_OFFICERS;
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/**
 * Competence and authorisation (ISO/IEC 17025 6.2.5–6.2.6): what each gated activity requires, competency
 * assessments, authorisations granted with an electronic signature and revoked with a reason, and a person's record.
 */
export function competenceRoutes(deps: ApiDeps): RouteSpec[] {
  const { db } = deps;

  /** The person an officer acts on: unknown is 404, deactivated 422, themselves 422 (nobody assesses or authorises themselves). */
  async function subject(username: string, actor: Actor, what: string) {
    const user: { id: string; username: string; active: boolean } | undefined = await db('users').where({ username }).first('id', 'username', 'active');
    if (!user) throw problems.notFound(`user ${username}`);
    if (!user.active) throw problems.unprocessable('user-inactive', `${username} is deactivated`, { errors: [{ field: 'body.username', detail: 'deactivated' }] });
    if (user.id === actor.userId) {
      throw problems.unprocessable('self-' + what, `nobody ${what === 'assessment' ? 'assesses' : 'authorises'} themselves: another officer must`, {
        errors: [{ field: 'body.username', detail: 'yourself' }],
      });
    }
    return user;
  }

  return [
    route({
      method: 'get',
      path: '/gate/activities/:activity/requirements',
      response: R.activityRequirements,
      summary: 'Whether the gate requires a current competency assessment and an active authorisation for the activity',
      tag,
      roles: 'any',
      params: activityParams,
      handler: async ({ params, ctx }) => {
        ctx.body = await activityRequirements(db, params.activity);
      },
    }),
    route({
      method: 'put',
      path: '/gate/activities/:activity/requirements',
      response: R.activityRequirements,
      summary: 'Set whether the gate requires a current competency assessment and an active authorisation for the activity (QA, lab director)',
      tag,
      roles: OFFICERS,
      adminPasses: false,
      params: activityParams,
      body: requirementsBody,
      handler: async ({ params, body, actor, ctx }) => {
        ctx.body = await setActivityRequirements(db, { activity: params.activity, ...body }, actor);
      },
    }),
    route({
      method: 'post',
      path: '/competency-assessments',
      response: { 201: R.competencyAssessment },
      problems: [404, 422],
      summary: 'Record a competency assessment (method, outcome; next due computed: twice in the first year, then yearly) of another person',
      tag,
      roles: OFFICERS,
      adminPasses: false,
      body: assessmentBody,
      handler: async ({ body, actor, ctx }) => {
        const user = await subject(body.username, actor, 'assessment');
        const assessedAt = body.assessedAt ? new Date(body.assessedAt) : new Date();
        if (assessedAt.getTime() > Date.now()) {
          throw problems.unprocessable('assessment-in-future', 'an assessment cannot be recorded before it took place', {
            errors: [{ field: 'body.assessedAt', detail: 'in the future' }],
          });
        }
        ctx.status = 201;
        ctx.body = await recordAssessment(
          db,
          { userId: user.id, activity: body.activity, scope: body.scope, method: body.method, outcome: body.outcome, assessedAt, evidence: body.evidence },
          actor,
          deps.config.competency ?? DEFAULT_COMPETENCY_POLICY,
        );
      },
    }),
    route({
      method: 'post',
      path: '/authorisations',
      response: { 201: R.authorisation },
      problems: [404, 409, 422, 423],
      summary:
        'Authorise another person for an activity and scope, signed (meaning "authorisation", the SHA-256 of the statement "authorise <username> for <activity> scope <scope> from <validFrom> until <validUntil or revoked>")',
      tag,
      roles: OFFICERS,
      adminPasses: false,
      body: authorisationBody,
      handler: async ({ body, actor, ctx }) => {
        const user = await subject(body.username, actor, 'authorisation');
        if (body.validUntil && new Date(body.validUntil).getTime() <= new Date(body.validFrom).getTime()) {
          throw problems.unprocessable('validity-invalid', 'the authorisation ends before it starts', { errors: [{ field: 'body.validUntil', detail: 'not after validFrom' }] });
        }
        const statement = authorisationStatement(body);
        const hash = sha256(statement);
        if (body.signature.contentHash !== hash) {
          throw problems.unprocessable('content-hash-mismatch', `the signature must be over the statement "${statement}" (its SHA-256 in hex)`, {
            errors: [{ field: 'body.signature.contentHash', detail: 'not the hash of the statement' }],
          });
        }
        const signature = await verifySigner(deps, actor, body.signature, { entityType: 'authorisation', entityId: `${body.username}:${body.activity}:${body.scope}` });
        const outcome = await grantAuthorisation(
          db,
          { userId: user.id, activity: body.activity, scope: body.scope, validFrom: new Date(body.validFrom), validUntil: body.validUntil ? new Date(body.validUntil) : null, statementHash: hash },
          actor,
          signature,
        );
        if (!outcome.ok) {
          throw problems.conflict('authorisation-standing', `${body.username} already holds a ${outcome.standing.state} authorisation for ${body.activity} scope ${body.scope}: revoke it first`, {
            authorisation: outcome.standing.id,
          });
        }
        ctx.status = 201;
        ctx.body = outcome.authorisation;
      },
    }),
    route({
      method: 'get',
      path: '/authorisations/:id',
      response: R.authorisation,
      summary: 'One authorisation with its signature (the person, officers)',
      tag,
      roles: 'any',
      params: authorisationParams,
      handler: async ({ params, actor, ctx }) => {
        const found = await findAuthorisation(db, params.id);
        if (!found || (found.username !== actor.username && !OFFICERS.some((r) => actor.roles.includes(r)))) throw problems.notFound(`authorisation ${params.id}`);
        ctx.body = found;
      },
    }),
    route({
      method: 'post',
      path: '/authorisations/:id/revoke',
      response: R.authorisation,
      problems: [404, 409],
      summary: 'Revoke an authorisation at once, with a reason; the gate refuses the person from then on',
      tag,
      roles: OFFICERS,
      adminPasses: false,
      params: authorisationParams,
      body: revokeBody,
      handler: async ({ params, body, actor, ctx }) => {
        const found = await findAuthorisation(db, params.id);
        if (!found) throw problems.notFound(`authorisation ${params.id}`);
        const revoked = await revokeAuthorisation(db, params.id, body.reason, actor);
        if (!revoked) throw problems.conflict('authorisation-ended', `this authorisation was already ${found.state === 'revoked' ? 'revoked' : 'ended'}`);
        ctx.body = revoked;
      },
    }),
    route({
      method: 'get',
      path: '/users/:username/competence',
      response: R.competenceRecord,
      summary: "A person's competency assessments and authorisations, newest first (their own; officers see everyone's)",
      tag,
      roles: 'any',
      params: personParams,
      handler: async ({ params, actor, ctx }) => {
        if (params.username !== actor.username && !OFFICERS.some((r) => actor.roles.includes(r))) {
          throw problems.forbidden("only QA managers and lab directors see other people's competence records");
        }
        const user = await db('users').where({ username: params.username }).first('id');
        if (!user) throw problems.notFound(`user ${params.username}`);
        ctx.body = { username: params.username, ...(await competenceOf(db, user.id)) };
      },
    }),
  ];
}
