import assert from 'node:assert/strict';
import type Router from '@koa/router';
import { apiDocument, createApp } from '../../api/app';
import type { ApiDeps } from '../../api/deps';
import { DOCS_CONTENT_SECURITY_POLICY } from '../../api/docs-page';
import { createLogger } from '../../platform/logger';
import { testApiConfig } from '../helpers/platform';
import { testEnv } from '../setup/env';
import { serve } from './support';

type Operation = {
  operationId: string;
  security: Record<string, string[]>[];
  parameters?: { in: string; name: string }[];
  requestBody?: unknown;
  description?: string;
  responses: Record<string, { content?: Record<string, { schema?: Record<string, unknown> }> }>;
};
const doc = apiDocument() as { paths: Record<string, Record<string, Operation>> };
const operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
  Object.entries(ops).map(([method, op]) => ({ method, path, op, name: `${method.toUpperCase()} ${path}` })),
);

/** The app over no database and no Temporal: enough for its routers and the routes that reach neither. */
const bareApp = () =>
  createApp({
    db: testEnv().appDb,
    config: testApiConfig('openapi-document'),
    log: createLogger({ LOG_LEVEL: 'silent', LOG_PRETTY: false }, 'test'),
    hardening: false,
  } as unknown as ApiDeps);

/** Every route the app's routers hold, as "METHOD /path/{param}". */
function mountedRoutes(): string[] {
  const app = bareApp();
  const routers = app.middleware.map((m) => (m as { router?: Router }).router).filter((r): r is Router => r !== undefined);
  return routers.flatMap((router) =>
    router.stack.flatMap((layer) =>
      layer.methods
        .filter((m) => m !== 'HEAD') // koa-router answers HEAD for every GET
        .map((m) => `${m} ${String(layer.path).replace(/:(\w+)/g, '{$1}')}`),
    ),
  );
}

describe('the OpenAPI document', () => {
  it('describes every route the app mounts, and only those', () => {
    const mounted = new Set(mountedRoutes());
    const documented = new Set(operations.map((o) => o.name));
    assert.ok(mounted.size > 100, `the routers hold ${mounted.size} routes`);
    assert.deepEqual([...mounted].filter((r) => !documented.has(r)).sort(), [], 'mounted but not documented');
    assert.deepEqual([...documented].filter((r) => !mounted.has(r)).sort(), [], 'documented but not mounted');
    for (const name of ['GET /healthz', 'GET /readyz', 'GET /metrics', 'GET /api/docs', 'GET /api/v1/openapi.json', 'POST /codec/decode', 'POST /api/v1/webhooks/{source}']) {
      assert.ok(documented.has(name), name);
    }
  });

  it('gives every operation a success response with its body schema (or none, for 204)', () => {
    for (const { name, op } of operations) {
      const successes = Object.keys(op.responses).filter((s) => /^2\d\d$/.test(s));
      assert.ok(successes.length, `${name} declares a success`);
      for (const status of successes) {
        const content = op.responses[status].content;
        if (status === '204') {
          assert.equal(content, undefined, `${name} 204 has no body`);
          continue;
        }
        assert.ok(content, `${name} ${status} declares its body`);
        for (const [type, media] of Object.entries(content)) {
          assert.ok(media.schema && Object.keys(media.schema).length, `${name} ${status} ${type} has a schema`);
        }
      }
    }
  });

  it('declares the errors each operation can return, all as problem+json with the shared Problem schema', () => {
    for (const { name, method, path, op } of operations) {
      const statuses = Object.keys(op.responses);
      const errors = statuses.filter((s) => /^[45]\d\d$/.test(s));
      for (const status of errors) {
        assert.deepEqual(
          op.responses[status].content,
          { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
          `${name} ${status}`,
        );
      }
      const schemes = op.security.flatMap((s) => Object.keys(s));
      const has = (status: number, why: string) => assert.ok(statuses.includes(String(status)), `${name} can answer ${status} (${why})`);
      if (schemes.length) has(401, 'it needs credentials');
      if (!['/healthz', '/readyz', '/metrics'].includes(path)) has(429, 'it counts against the rate limits');
      if (!schemes.includes('apiKey') || !path.startsWith('/api/v1/')) continue;
      // The route specs' operations: what route() derives from the spec.
      has(503, 'PostgreSQL or Temporal can be down');
      if (op.parameters?.some((p) => p.in === 'path')) has(404, 'it names a record in its path');
      if (op.parameters?.length || op.requestBody) has(400, 'it validates its input');
      if (method !== 'get') [400, 413, 415].forEach((s) => has(s, 'it reads a JSON body'));
      if (op.description?.startsWith('Roles:')) has(403, 'its roles are restricted');
      if (/signature/i.test(JSON.stringify(op.requestBody ?? {}))) has(423, 'a signing password can be locked');
    }
  });

  it('names 422 wherever a request holds a bounded date or duration', () => {
    const backfill = doc.paths['/api/v1/schedules/{scheduleId}/backfill'].post;
    assert.ok(backfill.responses['422'], 'a backfill window is bounded');
    assert.ok(!doc.paths['/api/v1/me'].get.responses['422'], 'GET /me takes nothing bounded');
  });

  it('is served with its reference page, whose script comes from the API itself under its own content policy', async () => {
    const server = await serve(bareApp());
    try {
      const served = await server.api('GET', '/api/v1/openapi.json');
      assert.equal(served.status, 200);
      assert.deepEqual(served.body, JSON.parse(JSON.stringify(doc)));
      const page = await server.api('GET', '/api/docs');
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
      assert.equal(page.headers.get('content-security-policy'), DOCS_CONTENT_SECURITY_POLICY);
      assert.match(DOCS_CONTENT_SECURITY_POLICY, /script-src 'self';/);
      const scripts = [...(page.body as string).matchAll(/<script src="([^"]+)"/g)].map((m) => m[1]);
      assert.deepEqual(scripts, ['/api/docs/scalar.js', '/api/docs/start.js'], 'no script from elsewhere, none inline');
      const bundle = await server.api('GET', '/api/docs/scalar.js');
      assert.equal(bundle.status, 200);
      assert.match(bundle.headers.get('content-type') ?? '', /javascript/);
      assert.match(bundle.body as string, /createApiReference/);
      const start = await server.api('GET', '/api/docs/start.js');
      assert.match(start.body as string, /url: '\/api\/v1\/openapi.json'/);
      assert.match(start.body as string, /telemetry: false/);
    } finally {
      await server.close();
    }
  });

  it('gives every operation a unique operationId', () => {
    const ids = operations.map((o) => o.op.operationId);
    assert.equal(new Set(ids).size, ids.length);
  });
});
