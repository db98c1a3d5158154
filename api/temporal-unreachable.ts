import { isGrpcServiceError, ServiceError } from '@temporalio/client';

const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_UNAVAILABLE = 14;

/**
 * Whether a Temporal call failed because the frontend did not answer (unavailable, deadline passed, connection
 * refused). The client wraps gRPC failures (describe() answers "Failed to describe workflow"); the status code is in
 * a cause.
 */
export function temporalUnreachable(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (isGrpcServiceError(e) && (e.code === GRPC_UNAVAILABLE || e.code === GRPC_DEADLINE_EXCEEDED)) return true;
    if (e instanceof ServiceError && /UNAVAILABLE|DEADLINE_EXCEEDED|connect/i.test(e.message)) return true;
  }
  return false;
}
