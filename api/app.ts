import Router from '@koa/router';
import Koa from 'koa';
import type { ApiDeps } from './deps';
import { errorHandler } from './error-handler';
import { createRateLimits } from './hardening/rate-limits';
import { signingSpecs } from './hardening/signing-routes';
import { apiCors, securityHeaders } from './hardening/security-headers';
import { mountHealth } from './health';
import { createApiMetrics } from './metrics';
import { requestContext } from './request-context';
import { mountRoutes, openApiDocument } from './route';
import { adminRoutes } from './routes/admin';
import { capaRoutes } from './routes/capa';
import { mountCodec } from './routes/codec';
import { credentialRoutes } from './routes/credentials';
import { documentVersionRoutes } from './routes/document-versions';
import { documentRoutes } from './routes/documents';
import { mountEnrolment } from './routes/enrolment';
import { erpSyncRoutes } from './routes/erp-sync';
import { inboxRoutes } from './routes/inbox';
import { patientRoutes } from './routes/patients';
import { routingTemplateRoutes } from './routes/routing-templates';
import { resultRoutes } from './routes/results';
import { sampleIntakeRoutes } from './routes/sample-intake';
import { mountSampleWebhooks } from './routes/sample-intake-webhooks';
import { scheduledWorkRoutes } from './routes/scheduled-work';
import { summaryRoutes } from './routes/summaries';
import { userRoutes } from './routes/users';
import { workflowRoutes } from './routes/workflows';

/** The whole HTTP API as a Koa app, without listening: the server and the tests mount it alike. */
export function createApp(deps: ApiDeps): Koa {
  const app = new Koa();
  // X-Forwarded-For is believed only from as many proxies as TRUSTED_PROXIES says; the client IP (rate limits,
  // logs) is otherwise the socket's.
  app.proxy = deps.config.trustedProxies > 0;
  app.maxIpsCount = deps.config.trustedProxies;
  const limits = createRateLimits(deps.db, deps.config.rateLimits);
  const metrics = createApiMetrics();
  const specs = [
    ...documentRoutes(deps),
    ...documentVersionRoutes(deps),
    ...routingTemplateRoutes(deps),
    ...inboxRoutes(deps),
    ...workflowRoutes(deps),
    ...userRoutes(deps),
    ...adminRoutes(deps),
    ...credentialRoutes(deps),
    ...capaRoutes(deps),
    ...sampleIntakeRoutes(deps),
    ...resultRoutes(deps),
    ...erpSyncRoutes(deps),
    ...scheduledWorkRoutes(deps),
    ...patientRoutes(deps),
    ...summaryRoutes(deps),
  ];
  const openapi = openApiDocument(specs);

  const root = new Router();
  mountHealth(root, deps.db, deps.temporal);
  mountSampleWebhooks(root, deps); // signed by HMAC per source, not by API key
  root.post('/codec/session', limits.signing);
  mountCodec(root, deps); // not under /api/v1: the Web UI and CLI append /encode and /decode to one base URL
  root.get('/metrics', async (ctx) => {
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });

  const api = new Router({ prefix: '/api/v1' });
  api.get('/openapi.json', (ctx) => {
    ctx.body = openapi;
  });
  mountEnrolment(api, deps); // the emailed one-time token is the credential, not an API key
  for (const spec of signingSpecs(specs)) api[spec.method](spec.path, limits.signing);
  mountRoutes(api, specs, deps);

  app.use(requestContext(deps.log));
  app.use(metrics.middleware);
  app.use(errorHandler(deps.log));
  if (deps.hardening !== false) {
    app.use(securityHeaders());
    app.use(apiCors(deps.config.corsOrigins));
    app.use(limits.requests);
  }
  app.use(root.routes()).use(root.allowedMethods());
  app.use(api.routes()).use(api.allowedMethods());
  return app;
}
