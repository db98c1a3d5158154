import type { z } from 'zod';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { route, type RouteSpec } from '../route';
import {
  policyAnswer,
  policyBody,
  rangesAnswer,
  rangesBody,
  ruleSetAnswer,
  ruleSetBody,
  ruleSetListAnswer,
  ruleSetParams,
  testParams,
} from '../schemas/result-config';
import {
  changePolicy,
  createRuleSet,
  newRangeVersion,
  policyView,
  rangesOf,
  requirePolicy,
  ruleSetHash,
  ruleSetOf,
  ruleSetsOf,
} from '../services/result-config';
import { verifySigner } from '../signing';

const LAB = ['lab_technician', 'lab_director'] as const;
const TAG = 'results';
type TestP = z.infer<typeof testParams>;

/**
 * A test's result configuration: its policy (verification, measuring range, delta limit), its versioned reference
 * ranges and its versioned, signed autoverification rule sets. Lab roles read; the lab director changes, and every
 * change is audited with its old and new values.
 */
export function resultConfigRoutes(deps: ApiDeps): RouteSpec[] {
  const { db } = deps;
  return [
    route<TestP>({
      method: 'get',
      path: '/tests/:test/result-policy',
      summary: "A test's result policy: kind, unit, verification rules, measuring range, delta limit",
      tag: TAG,
      roles: LAB,
      params: testParams,
      response: policyAnswer,
      handler: async ({ params, ctx }) => {
        ctx.body = policyView(await requirePolicy(db, params.test));
      },
    }),
    route<TestP, Record<string, never>, z.infer<typeof policyBody>>({
      method: 'put',
      path: '/tests/:test/result-policy',
      summary: "Change a test's result policy (the fields given); analyses already open keep the verification policy they opened with",
      tag: TAG,
      roles: ['lab_director'],
      adminPasses: false,
      params: testParams,
      body: policyBody,
      response: policyAnswer,
      problems: [422],
      handler: async ({ params, body, actor, ctx }) => {
        ctx.body = await changePolicy(db, actor, params.test, body);
      },
    }),
    route<TestP>({
      method: 'get',
      path: '/tests/:test/reference-ranges',
      summary: "A test's reference ranges, every version",
      tag: TAG,
      roles: LAB,
      params: testParams,
      response: rangesAnswer,
      handler: async ({ params, ctx }) => {
        await requirePolicy(db, params.test);
        ctx.body = await rangesOf(db, params.test);
      },
    }),
    route<TestP, Record<string, never>, z.infer<typeof rangesBody>>({
      method: 'post',
      path: '/tests/:test/reference-ranges',
      summary: "A new version of a test's reference ranges (results already judged keep their snapshot)",
      tag: TAG,
      roles: ['lab_director'],
      adminPasses: false,
      params: testParams,
      body: rangesBody,
      response: { 201: rangesAnswer },
      problems: [409, 422],
      handler: async ({ params, body, actor, ctx }) => {
        ctx.body = await newRangeVersion(db, actor, params.test, body.basedOnVersion, body.ranges);
        ctx.status = 201;
      },
    }),
    route<TestP>({
      method: 'get',
      path: '/tests/:test/autoverification-rules',
      summary: "A test's autoverification rule sets, every signed version (the newest is in force)",
      tag: TAG,
      roles: LAB,
      params: testParams,
      response: ruleSetListAnswer,
      handler: async ({ params, ctx }) => {
        ctx.body = { items: await ruleSetsOf(db, params.test) };
      },
    }),
    route<z.infer<typeof ruleSetParams>>({
      method: 'get',
      path: '/tests/:test/autoverification-rules/:version',
      summary: "One version of a test's autoverification rule set",
      tag: TAG,
      roles: LAB,
      params: ruleSetParams,
      response: ruleSetAnswer,
      handler: async ({ params, ctx }) => {
        ctx.body = await ruleSetOf(db, params.test, params.version);
      },
    }),
    route<TestP, Record<string, never>, z.infer<typeof ruleSetBody>>({
      method: 'post',
      path: '/tests/:test/autoverification-rules',
      summary:
        'A new version of the autoverification rule set, signed by the lab director (meaning "approval", contentHash: SHA-256 of the canonical JSON of {test, version, rules})',
      tag: TAG,
      roles: ['lab_director'],
      adminPasses: false,
      params: testParams,
      body: ruleSetBody,
      response: { 201: ruleSetAnswer },
      problems: [409, 422, 423],
      handler: async ({ params, body, actor, ctx }) => {
        const policy = await requirePolicy(db, params.test);
        if (policy.result_kind !== 'numeric') {
          throw problems.unprocessable('not-a-numeric-test', `${params.test} takes ${policy.result_kind} results; autoverification is for numeric tests`);
        }
        if (body.signature.meaning !== 'approval') {
          throw problems.unprocessable('wrong-signature-meaning', `this signature means "approval", not "${body.signature.meaning}"`);
        }
        const version = (body.basedOnVersion ?? 0) + 1;
        const expected = ruleSetHash(params.test, version, body.rules);
        if (body.signature.contentHash !== expected) {
          throw problems.unprocessable('content-hash-mismatch', 'the signature is not over {test, version, rules} as sent (canonical JSON, SHA-256)', {
            contentHash: expected,
          });
        }
        const signature = await verifySigner(deps, actor, body.signature, { entityType: 'autoverification_rule_set', entityId: params.test });
        ctx.body = await createRuleSet(db, actor, params.test, body.basedOnVersion, body.rules, signature);
        ctx.status = 201;
      },
    }),
  ];
}
