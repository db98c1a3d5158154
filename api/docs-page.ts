import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type Router from '@koa/router';
import { z } from 'zod';
import type { DocumentedOperation } from './openapi';

/**
 * The API reference at /api/docs: Scalar's standalone bundle, served from node_modules by the API itself (labs run
 * offline: no CDN), reading /api/v1/openapi.json. Nothing on the page loads from elsewhere.
 */
const SCALAR_BUNDLE = join(dirname(require.resolve('@scalar/api-reference')), 'browser', 'standalone.js');

/**
 * What the docs page needs and nothing more: its own scripts (the bundle and the start-up script, no inline script),
 * inline styles (the bundle injects its stylesheet), images and fonts from itself or data: URLs, fetches of the
 * document (and "try it" requests) to this API only. Another header middleware must leave this page's policy as is.
 */
export const DOCS_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "worker-src 'self' blob:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>labflow API</title></head>
<body><div id="api-reference"></div>
<script src="/api/docs/scalar.js"></script>
<script src="/api/docs/start.js"></script>
</body></html>
`;

// Nothing that would reach the internet: no telemetry, no hosted fonts, no AI agent, no hosted developer tools.
const START = `Scalar.createApiReference('#api-reference', {
  url: '/api/v1/openapi.json',
  telemetry: false,
  withDefaultFonts: false,
  agent: { disabled: true },
  showDeveloperTools: 'never',
});
`;

export const docsOperations: DocumentedOperation[] = [
  {
    method: 'get',
    path: '/api/v1/openapi.json',
    summary: 'This OpenAPI 3.1 document: every operation, its schemas and its answers',
    tag: 'documentation',
    security: [],
    responses: { 200: z.looseObject({ openapi: z.string(), info: z.looseObject({}), paths: z.looseObject({}) }) },
  },
  {
    method: 'get',
    path: '/api/docs',
    summary: 'The API reference, a page that reads this document (HTML)',
    tag: 'documentation',
    security: [],
    responses: { 200: z.string() },
    responseType: 'text/html',
  },
  {
    method: 'get',
    path: '/api/docs/scalar.js',
    summary: "The reference page's script (Scalar's standalone bundle)",
    tag: 'documentation',
    security: [],
    responses: { 200: z.string() },
    responseType: 'text/javascript',
  },
  {
    method: 'get',
    path: '/api/docs/start.js',
    summary: "The reference page's start-up script",
    tag: 'documentation',
    security: [],
    responses: { 200: z.string() },
    responseType: 'text/javascript',
  },
];

export function mountDocs(router: Router, openapi: Record<string, unknown>): void {
  let bundle: Buffer | undefined; // read on first use: most processes never serve the page
  router.get('/api/v1/openapi.json', (ctx) => {
    ctx.body = openapi;
  });
  router.get('/api/docs', (ctx) => {
    ctx.set('Content-Security-Policy', DOCS_CONTENT_SECURITY_POLICY);
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = PAGE;
  });
  router.get('/api/docs/start.js', (ctx) => {
    ctx.type = 'text/javascript; charset=utf-8';
    ctx.body = START;
  });
  router.get('/api/docs/scalar.js', (ctx) => {
    bundle ??= readFileSync(SCALAR_BUNDLE);
    ctx.type = 'text/javascript; charset=utf-8';
    ctx.set('Cache-Control', 'public, max-age=86400');
    ctx.body = bundle;
  });
}
