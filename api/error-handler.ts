import { ApplicationFailure, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/common';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { Context, Next } from 'koa';
import { FAILURE_HTTP_STATUS, FailureType } from '../common/failures';
import type { Logger } from '../platform/logger';
import { UnencryptedPayloadError } from '../platform/payload-codec';
import { isDataException, loggableError } from './hardening/safe-error';
import { Problem, problems } from './problem';
import { temporalUnreachable } from './temporal-unreachable';

const kebab = (value: string) => value.replace(/([a-z])([A-Z])/g, '$1-$2').toLowerCase();

/**
 * The server does not (yet) resolve one of labflow's search attributes on the namespace: just after the worker
 * registered them on a real server, or before any worker ran. Nothing was started; trying again later will work.
 */
function searchAttributesNotReady(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof Error && /no mapping defined for search attribute/i.test(e.message)) return true;
  }
  return false;
}

/** Turns anything thrown below into a problem+json answer; only a genuine bug becomes a 500. */
export function toProblem(err: unknown): Problem | null {
  if (err instanceof Problem) return err;
  if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure && err.cause.type) {
    const status = FAILURE_HTTP_STATUS[err.cause.type as FailureType];
    // A gate refusal names what is missing (the failure's details, IDs and names only), as the API's own check does.
    const gated = err.cause.type === FailureType.GateRefused && Array.isArray(err.cause.details?.[0]);
    if (status) return new Problem(status, kebab(err.cause.type), 'The action was refused', err.cause.message, gated ? { missing: err.cause.details[0] } : {});
  }
  // Temporal handed back a payload labflow did not encrypt: the run's data cannot be trusted, and it is not the caller's fault.
  if (err instanceof UnencryptedPayloadError) return new Problem(502, 'unencrypted-payload', 'Untrusted data from Temporal', err.message);
  if (err instanceof WorkflowExecutionAlreadyStartedError) {
    return problems.conflict('already-started', `a run with ID ${err.workflowId} already exists`, { workflowId: err.workflowId });
  }
  if (err instanceof WorkflowNotFoundError) {
    if (/already completed/i.test(err.message)) {
      return problems.conflict('run-finished', 'the run has already finished; nothing more can be done');
    }
    return problems.notFound(`workflow run ${err.workflowId}`);
  }
  const message = err instanceof Error ? err.message : '';
  if (temporalUnreachable(err)) return problems.unavailable('Temporal is not reachable');
  if (searchAttributesNotReady(err)) {
    return problems.unavailable("Temporal is not ready for labflow yet: its search attributes are not usable on the namespace; nothing was started");
  }
  const code = (err as { code?: string }).code;
  // Refused, reset or cut connections, the server shutting down or starting up (57P0x), connection exceptions (08xxx).
  const unreachable = ['ECONNREFUSED', 'ECONNRESET', '57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006'];
  if ((code && unreachable.includes(code)) || /Knex: Timeout acquiring a connection|Connection terminated|Connection ended unexpectedly/.test(message)) {
    return problems.unavailable('PostgreSQL is not reachable');
  }
  // The server's connection slots are all taken (53300) or a resource ran out (53xxx): a moment later may work.
  if (code && /^53\d{3}$/.test(code)) return problems.unavailable('PostgreSQL is out of connections or resources; try again shortly');
  // Chosen as a deadlock's victim (40P01) or refused by serializable isolation (40001): the transaction was undone whole.
  if (code === '40P01' || code === '40001') {
    const detail = 'the request met another change to the same records and was undone; nothing was written; try again';
    return new Problem(503, 'transaction-undone', 'The change met another one', detail, {}, { 'Retry-After': '1' });
  }
  // A value the schemas let through and the database refused: the client's to fix, and never quoted back.
  if (isDataException(err)) {
    return new Problem(400, 'invalid-value', 'A value is out of range', 'a date, number or text in the request is outside what labflow can store');
  }
  const status = (err as { status?: number }).status;
  if (status === 405) return new Problem(405, 'method-not-allowed', 'Method not allowed', message);
  if (status === 501) return new Problem(501, 'not-implemented', 'Not implemented', message);
  return null;
}

export function errorHandler(log: Logger) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
      if (ctx.body === undefined) {
        // What the routers answer without a body: no route (404), or a route without this method (405, with Allow).
        if (ctx.status === 404) throw problems.notFound(`${ctx.method} ${ctx.path}`);
        if (ctx.status === 405) throw new Problem(405, 'method-not-allowed', 'Method not allowed', `${ctx.method} is not allowed here`);
        if (ctx.status === 501) throw new Problem(501, 'not-implemented', 'Not implemented', `${ctx.method} is not implemented`);
      }
    } catch (err) {
      let problem = toProblem(err);
      if (!problem) {
        log.error({ err: loggableError(err), requestId: ctx.state.requestId }, 'unhandled error');
        problem = new Problem(500, 'internal', 'Internal error', `something went wrong; quote request ${ctx.state.requestId}`);
      }
      ctx.status = problem.status;
      ctx.set(problem.headers);
      ctx.body = problem.body(ctx.path);
      ctx.type = 'application/problem+json';
    }
  };
}
