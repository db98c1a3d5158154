import { FailureType, refuse } from '../../common/failures';
import type { ReleaseReportArgs, ReportState } from '../../common/reports';
import { requireProof, requireRole } from '../lib';

/**
 * What a release may not do, refused before it enters history: it needs its proof (an actor and a grant ID), the
 * lab director, a signature meaning "responsibility", and a report awaiting release. A release that arrives while
 * the run is still assembling (its record already reads "awaiting release" to a reader) is accepted and waits for
 * the assembly. The recording step checks the grant, the role and that every test is still verified against Postgres.
 */
export function validateRelease(r: ReportState, args: ReleaseReportArgs, options: { whileAssembling?: 'accept' } = {}): void {
  requireProof(args);
  requireRole(args.actor, ['lab_director'], { what: 'the lab director releases a report' });
  if (r.state === 'released') refuse(FailureType.WrongStage, `report ${r.accession} v${r.version} is already released`);
  const assembling = r.state === 'assembling' && options.whileAssembling === 'accept';
  if (r.state !== 'awaiting_release' && !assembling)
    refuse(FailureType.WrongStage, `report ${r.accession} v${r.version} is still being assembled`);
  if (args.signature?.meaning !== 'responsibility' || !args.signature.contentHash) {
    refuse(FailureType.InvalidInput, 'a release is signed with the meaning "responsibility"');
  }
}
