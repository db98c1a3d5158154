import cors from '@koa/cors';
import type { Context, Middleware, Next } from 'koa';
import helmet from 'koa-helmet';

/**
 * Helmet's headers on every answer, with a content security policy for an API: nothing may load, nothing may
 * frame it. The few HTML pages (the codec sign-in page) set their own policy over it.
 */
export function securityHeaders(): Middleware {
  const headers = helmet({
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"] } },
  });
  return async (ctx: Context, next: Next) => {
    // PHI passes through most routes (patients, summaries, samples, the codec): no answer is kept by a cache.
    ctx.set('Cache-Control', 'no-store');
    await headers(ctx, next);
  };
}

const EXPOSED = ['Location', 'Retry-After', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'RateLimit-Policy', 'X-Request-Id'];

/**
 * CORS for /api/v1 (CORS_ORIGINS, none by default): only the listed browser origins may call it, with a bearer key
 * (no cookies). The codec endpoint keeps its own list (CODEC_CORS_ORIGINS).
 */
export function apiCors(origins: readonly string[]): Middleware {
  const allowed = new Set(origins);
  const handler = cors({
    origin: (ctx) => (allowed.has(ctx.get('origin')) ? ctx.get('origin') : ''),
    allowMethods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowHeaders: ['Authorization', 'Content-Type', 'X-Request-Id'],
    exposeHeaders: EXPOSED,
    maxAge: 600,
  });
  return async (ctx: Context, next: Next) => {
    if (!ctx.path.startsWith('/api/')) return next();
    await handler(ctx, next);
  };
}
