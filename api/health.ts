import type Router from '@koa/router';
import type { Client } from '@temporalio/client';
import { z } from 'zod';
import type { Db } from '../db/knex';
import { lastCanary } from '../db/scheduled-work';
import type { DocumentedOperation } from './openapi';

const within = <T>(ms: number, work: Promise<T>) =>
  Promise.race([work, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref())]);

const checks = z.record(z.string(), z.string().describe('"ok", or "down: <why>"'));
const canary = z.object({
  status: z.enum(['ok', 'stale', 'never', 'unknown']),
  workflowId: z.string().optional(),
  completedAt: z.string().optional(),
  ageSeconds: z.number().optional(),
});

export const healthOperations: DocumentedOperation[] = [
  {
    method: 'get',
    path: '/healthz',
    summary: 'Liveness: answers while the process runs',
    tag: 'operations',
    security: [],
    responses: { 200: z.object({ status: z.literal('ok') }) },
  },
  {
    method: 'get',
    path: '/readyz',
    summary: 'Readiness: PostgreSQL and Temporal answer; the last canary run',
    tag: 'operations',
    description: 'A 503 problem names each dependency that does not answer (`checks`) and carries `canary`, with Retry-After.',
    security: [],
    responses: { 200: z.object({ status: z.literal('ready'), checks, canary }), 503: 'problem' },
  },
];

/** Liveness answers while the process runs; readiness names each dependency that does not answer. */
export function mountHealth(router: Router, db: Db, temporal: Client): void {
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    // The gRPC deadline ends the Temporal call itself; without it the client keeps retrying in the background.
    const deadline = Date.now() + 2000;
    const checks = {
      postgres: within(2000, db.raw('select 1')),
      temporal: within(
        2000,
        temporal.connection.withDeadline(deadline, () => temporal.connection.workflowService.getSystemInfo({})),
      ),
    };
    const results = Object.fromEntries(
      await Promise.all(
        Object.entries(checks).map(async ([name, check]) => [
          name,
          await check.then(
            () => 'ok',
            (err: Error) => `down: ${err.message.split('\n')[0]}`,
          ),
        ]),
      ),
    ) as Record<string, string>;
    const down = Object.entries(results)
      .filter(([, status]) => status !== 'ok')
      .map(([name]) => name);
    const canary = await within(2000, lastCanary(db)).catch(() => ({ status: 'unknown' }));
    ctx.status = down.length ? 503 : 200;
    if (down.length) {
      ctx.type = 'application/problem+json';
      ctx.body = {
        type: 'urn:labflow:problem:not-ready',
        title: 'Not ready',
        status: 503,
        detail: `unavailable: ${down.join(', ')}`,
        checks: results,
        canary,
      };
      ctx.set('Retry-After', '5');
    } else {
      ctx.body = { status: 'ready', checks: results, canary };
    }
  });
}
