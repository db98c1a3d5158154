import Router from '@koa/router';
import Koa from 'koa';
import type { ApiDeps } from './deps';
import { docsOperations, mountDocs } from './docs-page';
import { errorHandler } from './error-handler';
import { createRateLimits } from './hardening/rate-limits';
import { signingSpecs } from './hardening/signing-routes';
import { apiCors, securityHeaders } from './hardening/security-headers';
import { healthOperations, mountHealth } from './health';
import { createApiMetrics, metricsOperation } from './metrics';
import { openApiDocument } from './openapi';
import { requestContext } from './request-context';
import { mountRoutes } from './route';
import { adminRoutes } from './routes/admin';
import { capaRoutes } from './routes/capa';
import { codecOperations, mountCodec } from './routes/codec';
import { credentialRoutes } from './routes/credentials';
import { documentVersionRoutes } from './routes/document-versions';
import { documentRoutes } from './routes/documents';
import { enrolmentOperations, mountEnrolment } from './routes/enrolment';
import { erpSyncRoutes } from './routes/erp-sync';
import { eventRoutes } from './routes/events';
import { inboxRoutes } from './routes/inbox';
import { patientRoutes } from './routes/patients';
import { routingTemplateRoutes } from './routes/routing-templates';
import { documentPrecheckRoutes } from './routes/document-precheck';
import { reportRoutes } from './routes/reports';
import { resultRoutes } from './routes/results';
import { resultConfigRoutes } from './routes/result-config';
import { equipmentRoutes } from './routes/equipment';
import { sampleIntakeRoutes } from './routes/sample-intake';
import { notificationRoutes } from './routes/notifications';
import { mountSampleWebhooks, sampleWebhookOperations } from './routes/sample-intake-webhooks';
import { scheduledWorkRoutes } from './routes/scheduled-work';
import { streamRoutes } from './routes/stream';
import { auditTrailRoutes } from './routes/audit-trails';
import { bulkExportRoutes } from './routes/bulk-exports';
import { exportRoutes } from './routes/exports';
import { summaryRoutes } from './routes/summaries';
import { coaExtractionRoutes } from './routes/coa-extraction';
import { trainingRoutes } from './routes/training';
import { competenceRoutes } from './routes/competence';
import { userRoutes } from './routes/users';
import { webhookSubscriptionRoutes } from './routes/webhook-subscriptions';
import { workflowRoutes } from './routes/workflows';

function routeSpecs(deps: ApiDeps) {
  return [
    ...documentRoutes(deps),
    ...documentVersionRoutes(deps),
    ...routingTemplateRoutes(deps),
    ...documentPrecheckRoutes(deps),
    ...inboxRoutes(deps),
    ...workflowRoutes(deps),
    ...userRoutes(deps),
    ...adminRoutes(deps),
    ...credentialRoutes(deps),
    ...capaRoutes(deps),
    ...sampleIntakeRoutes(deps),
    ...resultRoutes(deps),
    ...reportRoutes(deps),
    ...resultConfigRoutes(deps),
    ...equipmentRoutes(deps),
    ...erpSyncRoutes(deps),
    ...scheduledWorkRoutes(deps),
    ...patientRoutes(deps),
    ...summaryRoutes(deps),
    ...coaExtractionRoutes(deps),
    ...eventRoutes(deps),
    ...streamRoutes(deps),
    ...webhookSubscriptionRoutes(deps),
    ...notificationRoutes(deps),
    ...exportRoutes(deps),
    ...bulkExportRoutes(deps),
    ...trainingRoutes(deps),
    ...competenceRoutes(deps),
    ...auditTrailRoutes(deps),
  ];
}

/** The OpenAPI document of every operation: the route specs, and those createApp mounts beside them. */
function documentOf(specs: ReturnType<typeof routeSpecs>) {
  return openApiDocument(specs, [
    ...healthOperations,
    metricsOperation,
    ...docsOperations,
    ...sampleWebhookOperations,
    ...codecOperations,
    ...enrolmentOperations,
  ]);
}

/** The document alone, without a database or Temporal: building the route specs touches neither. */
export const apiDocument = () => documentOf(routeSpecs({} as ApiDeps));

/** The whole HTTP API as a Koa app, without listening: the server and the tests mount it alike. */
export function createApp(deps: ApiDeps): Koa {
  const app = new Koa();
  // X-Forwarded-For is believed only from as many proxies as TRUSTED_PROXIES says; the client IP (rate limits,
  // logs) is otherwise the socket's.
  app.proxy = deps.config.trustedProxies > 0;
  app.maxIpsCount = deps.config.trustedProxies;
  const limits = createRateLimits(deps.db, deps.config.rateLimits);
  const metrics = createApiMetrics();
  const specs = routeSpecs(deps);
  const openapi = documentOf(specs);

  const root = new Router();
  mountHealth(root, deps.db, deps.temporal);
  mountSampleWebhooks(root, deps); // signed by HMAC per source, not by API key
  root.post('/codec/session', limits.signing);
  mountCodec(root, deps); // not under /api/v1: the Web UI and CLI append /encode and /decode to one base URL
  root.get('/metrics', async (ctx) => {
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });
  mountDocs(root, openapi); // /api/v1/openapi.json and its reader at /api/docs (with its own content security policy)

  const api = new Router({ prefix: '/api/v1' });
  // The emailed one-time token is the credential, not an API key; a password is chosen there, so the sign-in budget.
  api.post('/enrolment', limits.signing);
  mountEnrolment(api, deps);
  for (const spec of signingSpecs(specs)) api[spec.method](spec.path, limits.signing);
  mountRoutes(api, specs, deps);

  // What fails once an answer has begun (a streamed body) reaches Koa, not the error handler: logged, never printed.
  app.on('error', (err: NodeJS.ErrnoException) => {
    // A client that goes away in the middle of a stream (an event stream's usual end) is nothing to report.
    if (err.code === 'ERR_STREAM_PREMATURE_CLOSE') return;
    deps.log.warn({ err: err.name, code: err.code }, 'an answer failed after it had begun');
  });
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
