import type { AssigneeRef } from '../../common/assignees';
import { FailureType, refuse } from '../../common/failures';
import type { Actor, Role } from '../../common/roles';
import {
  ACCEPTED_STATES,
  FINAL_SAMPLE_STATES,
  type AcceptArgs,
  type AliquotArgs,
  type AttachOrderArgs,
  type CancelArgs,
  type DeviationArgs,
  type InspectArgs,
  type ReceiptArgs,
  type RejectArgs,
  type RouteArgs,
  type SampleIntakeState,
  type SampleState,
  type StoreArgs,
} from '../../common/sample-intake';
import { requireProof, requireRole, requireState, requireText } from '../lib';
import { acceptedTests, failedCriteria, unroutedTests } from './state';

/**
 * What an Update may not do to a sample, refused before it enters history. Every Update records a person's action,
 * so each first requires its proof (an actor as the API builds one and a grant ID; a null or malformed actor is
 * refused): the recording activity checks the grant itself.
 */

const LAB_ROLES: Role[] = ['lab_technician', 'lab_director'];
const ORDERING_ROLES: Role[] = [...LAB_ROLES, 'clinician'];

function requireSampleIn(sample: SampleIntakeState, ...allowed: SampleState[]): void {
  requireState(sample.accession, sample.state, allowed, FINAL_SAMPLE_STATES);
}
/** An admin may act for any role here. */
function requireSampleRole(actor: Actor, roles: Role[]): void {
  requireRole(actor, roles, { adminPasses: true });
}
/** A clinician acts only on a sample they submitted; lab roles (and admins) on any. */
function requireOwnSample(actor: Actor, submitter: AssigneeRef | null | undefined): void {
  if (actor.roles.some((role) => role === 'admin' || LAB_ROLES.includes(role))) return;
  if (submitter?.kind === 'user' && submitter.userId === actor.userId) return;
  refuse(FailureType.Forbidden, 'a clinician acts only on samples they submitted');
}
function requireOrder(sample: SampleIntakeState): void {
  if (!sample.hasOrder) refuse(FailureType.WrongStage, `${sample.accession} has no order yet; attach one first`);
}

export function validateReceipt(sample: SampleIntakeState, args: ReceiptArgs): void {
  requireProof(args);
  const { actor, collectedAt, receivedAt } = args;
  requireSampleIn(sample, 'expected', 'in_transit');
  requireSampleRole(actor, LAB_ROLES);
  const collected = collectedAt ?? sample.collectedAt;
  if (collected && Date.parse(collected) > Date.parse(receivedAt)) {
    refuse(FailureType.InvalidInput, `the collection time ${collected} is after the receipt time ${receivedAt}`);
  }
}

export function validateInspection(sample: SampleIntakeState, args: InspectArgs): void {
  requireProof(args);
  const { actor } = args;
  requireSampleIn(sample, 'received', 'inspected');
  requireSampleRole(actor, LAB_ROLES);
}

export function validateAcceptance(sample: SampleIntakeState, args: AcceptArgs): void {
  requireProof(args);
  const { actor } = args;
  requireSampleIn(sample, 'inspected');
  requireSampleRole(actor, LAB_ROLES);
  requireOrder(sample);
  if (!sample.inspection?.passed) {
    refuse(
      FailureType.InvalidInput,
      `the specimen fails ${failedCriteria(sample).join(', ')}: reject it, or the lab director accepts it with a deviation`,
    );
  }
}

export function validateDeviation(sample: SampleIntakeState, args: DeviationArgs): void {
  requireProof(args);
  const { actor, comment, signature } = args;
  requireSampleIn(sample, 'inspected');
  requireSampleRole(actor, ['lab_director']);
  requireOrder(sample);
  requireText(comment, 'a comment for the report');
  const current = sample.inspection?.contentHash;
  if (signature.contentHash !== current) {
    refuse(FailureType.StaleContentHash, `the inspection record changed since it was read: current hash is ${current}`);
  }
}

export function validateRejection(sample: SampleIntakeState, args: RejectArgs): void {
  requireProof(args);
  const { actor, tests, condition } = args;
  requireSampleIn(sample, 'received', 'inspected', ...ACCEPTED_STATES);
  requireSampleRole(actor, LAB_ROLES);
  requireText(condition, 'the specimen condition');
  const open = acceptedTests(sample);
  const unknown = (tests ?? []).filter((test) => !open.includes(test));
  if (unknown.length) refuse(FailureType.InvalidInput, `not an open requested test of ${sample.accession}: ${unknown.join(', ')}`);
}

export function validateAliquots(sample: SampleIntakeState, args: AliquotArgs): void {
  requireProof(args);
  const { actor, volumesMl } = args;
  requireSampleIn(sample, ...ACCEPTED_STATES);
  requireSampleRole(actor, LAB_ROLES);
  if (!volumesMl.length || volumesMl.some((volume) => !(volume > 0)))
    refuse(FailureType.InvalidInput, 'each aliquot needs a volume above 0 mL');
}

export function validateStorage(sample: SampleIntakeState, args: StoreArgs): void {
  requireProof(args);
  const { actor, piece, freezer, rack, box, position } = args;
  requireSampleIn(sample, ...ACCEPTED_STATES);
  requireSampleRole(actor, LAB_ROLES);
  const stored = sample.pieces.find((p) => p.accession === piece);
  if (!stored || stored.state !== 'active') refuse(FailureType.InvalidInput, `${piece} is not an active piece of ${sample.accession}`);
  const holder = sample.storage.find((p) => p.freezer === freezer && p.rack === rack && p.box === box && p.position === position);
  if (holder) refuse(FailureType.PositionTaken, `position ${freezer}/${rack}/${box}/${position} already holds ${holder.piece}`);
}

export function validateRouting(sample: SampleIntakeState, args: RouteArgs): void {
  requireProof(args);
  const { actor, tests } = args;
  requireSampleIn(sample, ...ACCEPTED_STATES);
  requireSampleRole(actor, LAB_ROLES);
  const open = unroutedTests(sample);
  if (!open.length) refuse(FailureType.WrongStage, `every accepted test of ${sample.accession} is already routed`);
  for (const { test, piece } of tests ?? []) {
    if (!open.includes(test)) refuse(FailureType.InvalidInput, `${test} is not an accepted, unrouted test of ${sample.accession}`);
    if (!sample.pieces.some((p) => p.accession === piece && p.state === 'active')) {
      refuse(FailureType.InvalidInput, `${piece} is not an active piece`);
    }
  }
}

export function validateOrder(sample: SampleIntakeState, args: AttachOrderArgs, submitter?: AssigneeRef | null): void {
  requireProof(args);
  const { actor, tests } = args;
  requireSampleIn(sample, 'expected', 'in_transit', 'received', 'inspected');
  requireSampleRole(actor, ORDERING_ROLES);
  requireOwnSample(actor, submitter);
  if (sample.hasOrder) refuse(FailureType.WrongStage, `${sample.accession} already has an order`);
  if (!tests.length) refuse(FailureType.InvalidInput, 'an order names at least one test');
}

export function validateCancellation(sample: SampleIntakeState, args: CancelArgs, submitter?: AssigneeRef | null): void {
  requireProof(args);
  const { actor, reason } = args;
  requireSampleIn(sample, 'expected', 'in_transit', 'received', 'inspected', ...ACCEPTED_STATES);
  requireSampleRole(actor, ORDERING_ROLES);
  requireOwnSample(actor, submitter);
  requireText(reason, 'a reason');
}

export function validateReinstatement(sample: SampleIntakeState, args: CancelArgs): void {
  requireProof(args);
  const { actor, reason } = args;
  requireSampleIn(sample, 'cancelled');
  requireSampleRole(actor, LAB_ROLES);
  requireText(reason, 'a reason');
}
