import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { Logger } from '../platform/logger';

/** Gives every request an ID (the caller's X-Request-Id when sane) and logs one line when it ends. */
export function requestContext(log: Logger) {
  return async (ctx: Context, next: Next) => {
    const offered = ctx.get('x-request-id');
    const requestId = /^[A-Za-z0-9._-]{1,64}$/.test(offered) ? offered : randomUUID();
    ctx.state.requestId = requestId;
    ctx.set('X-Request-Id', requestId);
    const started = performance.now();
    await next();
    const line = {
      requestId,
      method: ctx.method,
      path: ctx.path,
      status: ctx.status,
      ms: Math.round(performance.now() - started),
      actor: ctx.state.actor,
    };
    if (ctx.status >= 500) log.error(line, 'request failed');
    else log.info(line, 'request');
  };
}
