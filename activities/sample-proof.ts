import { Context } from '@temporalio/activity';
import type { Knex } from 'knex';
import { canonicalJson } from '../common/capa-hash';
import type { Actor } from '../common/roles';
import { boundSampleArgs, maySampleAction, type SampleAction } from '../common/sample-intake-grants';
import type { SampleEvent } from '../common/sample-intake';
import type { SignatureInput } from '../common/signatures';
import { SAMPLE_ACCEPTANCE_WITH_DEVIATION } from '../db/gate';
import { claimDelivery } from '../db/sample-webhooks';
import type { ActivityDeps } from './deps';
import { activityKey } from './keys';
import { grantChecks, Refusal, type RecordRef } from './lib/grant-checks';
import type { SampleRef } from './sample-intake';
import { gateInTransaction } from './training';

/**
 * What a sample-intake run shows the recording activity to have it believe a step:
 * - `person`: the request a person's Update carried (the actor it names, the grant the API wrote, the arguments);
 *   the grant is consumed in the recording transaction and the actor is the user as Postgres knows them now.
 * - `delivery`: a machine event (courier, instrument, external LIMS); the webhook delivery it names must hold exactly
 *   this event for this run (the API wrote it there before signalling).
 * - `batch`: a batch's specimen in hand; the sample's row must hold this arrival (the API wrote it at registration).
 * - `run`: a step the run derives from steps already proven (completion once every result is in).
 */
export type SampleProof =
  | { kind: 'person'; action: SampleAction; grant: unknown; actor: unknown; request: unknown; signature?: SignatureInput }
  | { kind: 'delivery'; event: SampleEvent }
  | { kind: 'batch'; arrival: unknown }
  | { kind: 'run' };

/** Who a proven step is recorded as: a person as Postgres knows them, else the system that sent it. */
export interface ProvenBy {
  actor: Actor | null;
  by: string | null;
}

/** Steps a run records on its own account, without a request from outside. */
const RUN_STEPS = ['sample.completed'];

export function sampleProofChecks(deps: Pick<ActivityDeps, 'db' | 'mailer' | 'mailDomain' | 'publicUrl'>) {
  const checks = grantChecks(deps);
  const requireGate = gateInTransaction(deps);
  const recordRef = (ref: SampleRef): RecordRef => ({
    workflowId: ref.workflowId,
    entityType: 'sample',
    entityId: ref.accession,
    label: `specimen ${ref.accession}`,
    link: `${deps.publicUrl}/api/v1/samples/${ref.accession}`,
  });

  /**
   * Checks a step's proof inside its recording transaction (a refusal rolls the transaction back) and answers whom
   * to record. `action` is what the run says it records; a person's proof must be for the same action.
   */
  async function proven(trx: Knex.Transaction, ref: SampleRef, proof: SampleProof | undefined, step: string): Promise<ProvenBy> {
    const claimed = (proof as { actor?: { userId?: unknown } } | undefined)?.actor?.userId;
    const claimedUserId = typeof claimed === 'string' ? claimed.slice(0, 64) : null;
    // The step is about the sample whose run this is: a run started straight through Temporal under another ID,
    // naming a registered sample, records nothing on it.
    const sample = await trx('samples').where({ id: ref.sampleId, accession: ref.accession }).first('submitter_id', 'workflow_id');
    const running = Context.current().info.workflowExecution?.workflowId;
    if (!sample || sample.workflow_id !== ref.workflowId || running !== ref.workflowId) throw new Refusal('other_run', claimedUserId);
    switch (proof?.kind) {
      case 'person': {
        const actor = await checks.granted(
          trx,
          ref,
          {
            grantId: proof.grant,
            action: proof.action,
            actor: proof.actor,
            args: boundSampleArgs(proof.action, proof.request),
            signature: proof.signature && { meaning: proof.signature.meaning, contentHash: proof.signature.contentHash },
          },
          (user) => maySampleAction(proof.action, user, sample.submitter_id ?? null),
        );
        if (proof.action === 'sample.accept_with_deviation') {
          await requireGate(trx, actor, { activity: SAMPLE_ACCEPTANCE_WITH_DEVIATION }, { entityType: 'sample', entityId: ref.accession });
        }
        return { actor, by: actor.username };
      }
      case 'delivery': {
        const refusal = await claimDelivery(trx, { event: proof.event, workflowId: ref.workflowId, recordedBy: activityKey() });
        if (refusal) throw new Refusal(refusal, null);
        return { actor: null, by: `system:${proof.event.source}` };
      }
      case 'batch': {
        const sample = await trx('samples').where({ id: ref.sampleId }).whereNotNull('batch_id').first('arrival');
        if (!sample?.arrival || canonicalJson(sample.arrival) !== canonicalJson(proof.arrival)) throw new Refusal('not_from_labflow', null);
        return { actor: null, by: null };
      }
      case 'run':
        if (RUN_STEPS.includes(step)) return { actor: null, by: null };
        throw new Refusal('not_from_labflow', null);
      default:
        throw new Refusal('missing', claimedUserId);
    }
  }

  /** Runs a step's transaction; an unproven step writes nothing and is a security event (see grantChecks). */
  const recording = <T>(ref: SampleRef, step: string, work: (trx: Knex.Transaction) => Promise<T>) =>
    checks.recording(recordRef(ref), step, work);

  return { proven, recording };
}
