import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Context, Next } from 'koa';
import { z } from 'zod';
import type { DocumentedOperation } from './openapi';

export const metricsOperation: DocumentedOperation = {
  method: 'get',
  path: '/metrics',
  summary: 'Prometheus metrics of this API process (text exposition format)',
  tag: 'operations',
  description: 'Open, like /healthz and /readyz: keep it on the internal network.',
  security: [],
  responses: { 200: z.string() },
  responseType: 'text/plain',
};

export function createApiMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'labflow_api_' });
  const requests = new Counter({
    name: 'labflow_api_requests_total',
    help: 'API requests by route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'labflow_api_request_duration_seconds',
    help: 'API request latency by route',
    labelNames: ['method', 'route'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  return {
    registry,
    middleware: async (ctx: Context, next: Next) => {
      const started = process.hrtime.bigint();
      try {
        await next();
      } finally {
        // The matched route pattern, not the raw path, keeps the label set small.
        const route = (ctx as Context & { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
        requests.inc({ method: ctx.method, route, status: String(ctx.status) });
        latency.observe({ method: ctx.method, route }, Number(process.hrtime.bigint() - started) / 1e9);
      }
    },
  };
}
