import { ApplicationFailure } from '@temporalio/activity';
import { OPEN_CAPA_STAGES, type CapaInput, type CapaSource } from '../common/capa';
import { FailureType } from '../common/failures';
import { workflowIds } from '../common/ids';
import type { Actor } from '../common/roles';
import { appendAudit } from '../db/audit';
import { allocateCapaNumber, openCapasNaming } from '../db/capa';
import type { ActivityDeps } from './deps';
import { activityKey } from './keys';
import type { SampleRef } from './sample-intake';

/**
 * What a rejection's CAPA request needs from the run: link the sample to an open CAPA (signal it), start a new CAPA
 * under this input, or nothing (the request was already taken up).
 */
export type CapaPlan =
  | { kind: 'link'; workflowId: string }
  | { kind: 'start'; workflowId: string; input: CapaInput }
  | { kind: 'done'; workflowId: string | null };

/** A rejection's CAPA request taken up by the sample's run: what to start or link, and that it was done. */
export function sampleCapaActivities({ db }: ActivityDeps) {
  return {
    /**
     * Takes up a rejection's pending CAPA request (DB only; the run starts or signals the CAPA): the open CAPA that
     * already names this sample, else the open CAPA opened for an earlier request about the same submitting source
     * and rejection code, else a newly numbered CAPA. The decision is kept on the request (under a row lock, and
     * under an advisory lock per source and code so racing rejections agree), so a retry returns the same answer
     * and never allocates a second number.
     */
    async planCapaForRejection(p: { ref: SampleRef; requestId: string; actor: Actor }): Promise<CapaPlan> {
      return db.transaction(async (trx) => {
        const request = await trx('sample_capa_requests').where({ id: p.requestId }).forNoKeyUpdate().first();
        if (!request)
          throw ApplicationFailure.create({ type: FailureType.NotFound, message: `no CAPA request ${p.requestId}`, nonRetryable: true });
        if (request.state !== 'pending') return { kind: 'done', workflowId: request.capa_workflow_id ?? null };
        const details = request.details as {
          code: string;
          source: string;
          capa?: { kind: 'link' | 'start'; workflowId: string; input?: CapaInput };
        };
        if (details.capa?.kind === 'link') return { kind: 'link', workflowId: details.capa.workflowId };
        if (details.capa?.kind === 'start') return { kind: 'start', workflowId: details.capa.workflowId, input: details.capa.input! };
        await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`sample-capa:${details.source}:${details.code}`]);
        const source: CapaSource = { type: 'sample', id: p.ref.accession };
        const [naming] = await openCapasNaming(trx, [source]);
        let decision: NonNullable<typeof details.capa>;
        if (naming) {
          decision = { kind: 'link', workflowId: workflowIds.capa(naming.number) };
        } else {
          // An earlier request about the same source and code whose CAPA is still open (or not yet written).
          const earlier = await trx('sample_capa_requests as r')
            .leftJoin('capas as c', 'c.workflow_id', trx.raw(`coalesce(r.capa_workflow_id, r.details->'capa'->>'workflowId')`))
            .whereNot('r.id', p.requestId)
            .whereNot('r.state', 'dismissed')
            .whereRaw(`r.details->>'source' = ? and r.details->>'code' = ?`, [details.source, details.code])
            .whereRaw(`coalesce(r.capa_workflow_id, r.details->'capa'->>'workflowId') is not null`)
            .andWhere((q) => q.whereNull('c.stage').orWhereIn('c.stage', OPEN_CAPA_STAGES))
            .orderBy('r.created_at', 'desc')
            .first(trx.raw(`coalesce(r.capa_workflow_id, r.details->'capa'->>'workflowId') as workflow_id`));
          if (earlier) {
            decision = { kind: 'link', workflowId: earlier.workflow_id };
          } else {
            const number = await allocateCapaNumber(trx);
            decision = {
              kind: 'start',
              workflowId: workflowIds.capa(number),
              input: {
                number,
                title: `Repeated specimen rejections: ${details.code} from ${details.source}`,
                description: `${request.reason}. Raised by the sample-intake CAPA rule on the rejection of ${p.ref.accession}.`,
                sources: [source],
                initiatedBy: { userId: p.actor.userId, username: p.actor.username },
              },
            };
          }
        }
        await trx('sample_capa_requests')
          .where({ id: p.requestId })
          .update({ details: JSON.stringify({ ...details, capa: decision }) });
        return decision.kind === 'link'
          ? { kind: 'link', workflowId: decision.workflowId }
          : { kind: 'start', workflowId: decision.workflowId, input: decision.input! };
      });
    },

    /** The CAPA request is taken up: `started`, with the CAPA run it opened or was linked to, and audited. */
    async markCapaRequestStarted(p: { ref: SampleRef; requestId: string; workflowId: string; linked: boolean }): Promise<void> {
      await db.transaction(async (trx) => {
        const updated = await trx('sample_capa_requests')
          .where({ id: p.requestId, state: 'pending' })
          .update({ state: 'started', capa_workflow_id: p.workflowId });
        if (!updated) return;
        await appendAudit(trx, {
          actorId: null,
          actor: 'system:sample-intake',
          action: p.linked ? 'sample.capa_linked' : 'sample.capa_opened',
          entityType: 'sample',
          entityId: p.ref.accession,
          details: { workflowId: p.ref.workflowId, capaRequestId: p.requestId, capaWorkflowId: p.workflowId },
          idempotencyKey: activityKey(),
        });
      });
    },
  };
}
