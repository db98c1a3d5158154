import type Router from '@koa/router';
import type { UpdateDefinition, WorkflowHandle } from '@temporalio/client';
import type { Context } from 'koa';
import type { z } from 'zod';
import { FAILURE_HTTP_STATUS } from '../common/failures';
import type { Actor, Role } from '../common/roles';
import { requireRole } from './auth';
import { readJsonBody } from './body';
import { problems } from './problem';
import { OUT_OF_BOUNDS } from './schemas/common';
import type { ApiDeps } from './deps';

export interface RouteInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  actor: Actor;
  ctx: Context;
}

/** One HTTP operation: its schemas drive validation and the OpenAPI document alike. */
export interface RouteSpec<P = unknown, Q = unknown, B = unknown> {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  path: string;
  summary: string;
  tag: string;
  roles: readonly Role[] | 'any';
  /** Who may call it, for OpenAPI, where the role list alone would mislead (PHI routes admin does not pass). */
  access?: string;
  /** false: only the roles named, admin does not pass (a record signed for a role's responsibility). */
  adminPasses?: boolean;
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  body?: z.ZodType<B>;
  /** A larger body limit than the API's default, for the few routes whose documented payloads need it. */
  bodyLimitBytes?: number;
  /**
   * What a success answers: the body's schema (status 200), or each success status with its body's schema (`null`:
   * no body, as 204). The error responses are derived (api/openapi.ts); `problems` adds those only the handler knows.
   */
  response: ResponseSchemas;
  /** Error statuses the handler (or the run's update validators) can answer beyond the derived ones: 409, 422… */
  problems?: readonly number[];
  /** The success body's media type when it is not JSON (a version's text). */
  responseType?: string;
  /** Further media types the success body may take, with their schemas (an export's PDF and CSV beside its JSON). */
  alternatives?: Record<string, z.ZodType>;
  /** Sets ctx.status and ctx.body. */
  handler: (input: RouteInput<P, Q, B>) => Promise<void>;
}

/** A success body's schema, or a schema (null: no body) per success status. */
export type ResponseSchemas = z.ZodType | { [status: number]: z.ZodType | null };

export function route<P = Record<string, never>, Q = Record<string, never>, B = undefined>(spec: RouteSpec<P, Q, B>): RouteSpec {
  return spec as unknown as RouteSpec;
}

export function parseOrProblem<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const field = (path: PropertyKey[]) => [where, ...path.map(String)].join('.');
  // An unknown key is reported at the object holding it; the client needs the key itself to fix the request.
  const errors = result.error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ field: field([...issue.path, key]), detail: 'not a field this operation takes' }))
      : [{ field: field(issue.path), detail: issue.message }],
  );
  const detail = errors.map((e) => `${e.field}: ${e.detail}`).join('; ');
  // Well-formed but outside labflow's bounds (a ten-year-plus duration, a date before 1900): refused, not malformed.
  const bounded = result.error.issues.every(
    (i) => i.code === 'custom' && (i.params as { kind?: string } | undefined)?.kind === OUT_OF_BOUNDS,
  );
  if (bounded) throw problems.unprocessable(OUT_OF_BOUNDS, detail, { errors });
  throw problems.validation(detail, errors);
}

export function mountRoutes(router: Router, specs: RouteSpec[], deps: ApiDeps): void {
  for (const spec of specs) {
    router[spec.method](spec.path, async (ctx) => {
      const actor = await deps.authenticate(ctx);
      requireRole(actor, spec.roles, spec.adminPasses);
      const params = spec.params ? parseOrProblem(spec.params, ctx.params, 'params') : {};
      const query = spec.query ? parseOrProblem(spec.query, { ...ctx.query }, 'query') : {};
      let body: unknown;
      if (spec.method !== 'get') {
        const raw = await readJsonBody(ctx, spec.bodyLimitBytes ?? deps.config.bodyLimitBytes);
        if (spec.body) body = parseOrProblem(spec.body, raw ?? {}, 'body');
      }
      ctx.state.actor = actor.username;
      await spec.handler({ params, query, body, actor, ctx });
    });
  }
}

/**
 * One human action on a process's run: an Update whose validator judges who may do what when. The route parses,
 * turns the request into the Update's argument and answers with the state the run returns once it accepted it.
 */
export function updateRoute<P, B, A, R>(
  spec: Omit<RouteSpec<P, Record<string, never>, B>, 'handler'> & {
    /** The run to update, found from the path (404 when there is none). */
    run: (params: P, actor: Actor) => Promise<WorkflowHandle> | WorkflowHandle;
    update: UpdateDefinition<R, [A]>;
    toArgs: (input: RouteInput<P, Record<string, never>, B>) => Promise<A> | A;
  },
): RouteSpec {
  const { run, update, toArgs, ...rest } = spec;
  return route<P, Record<string, never>, B>({
    ...rest,
    // The run's validators refuse with the statuses of FAILURE_HTTP_STATUS; a finished run is a 409.
    problems: [...new Set([...(rest.problems ?? []), ...Object.values(FAILURE_HTTP_STATUS)])],
    handler: async (input) => {
      const handle = await run(input.params, input.actor);
      const args = await toArgs(input);
      input.ctx.body = await handle.executeUpdate(update, { args: [args] });
    },
  });
}
