import { FailureType, refuse } from '../../common/failures';
import { CALL_OUTCOMES, CRITICAL_CALL_ROLES, type CriticalCallState, type LogAttemptArgs } from '../../common/critical-calls';
import { requireProof, requireRole } from '../lib';

/**
 * What a `log-attempt` Update may not do, refused before it enters history: no proof, a role outside the lab, a call
 * already confirmed or withdrawn, an outcome that is not one of the three, a request without its IDs. The recording activity
 * checks the grant and the role again against Postgres.
 */
export function validateAttempt(c: CriticalCallState, args: LogAttemptArgs): void {
  requireProof(args);
  requireRole(args.actor, CRITICAL_CALL_ROLES);
  if (c.state === 'notified') refuse(FailureType.RunFinished, `the critical-value call for ${c.test} of ${c.accession} is already confirmed`);
  if (c.state === 'withdrawn') {
    refuse(FailureType.CriticalCallWithdrawn, `the critical-value call for ${c.test} of ${c.accession} was withdrawn: the value is no longer critical`);
  }
  if (!CALL_OUTCOMES.includes(args.outcome)) refuse(FailureType.InvalidInput, `an outcome is one of ${CALL_OUTCOMES.join(', ')}`);
  if (typeof args.requestId !== 'string' || !args.requestId || args.requestId.length > 100) refuse(FailureType.InvalidInput, 'a request ID is required');
  if (typeof args.attemptRequestId !== 'string' || !/^[0-9a-f-]{36}$/.test(args.attemptRequestId)) {
    refuse(FailureType.InvalidInput, 'the staged attempt is required');
  }
}
