import { ApplicationFailure } from '@temporalio/activity';
import { coaGrantedArgs, coaWorkflowId, type ConfirmCoaArgs } from '../common/coa-extraction';
import { appendAudit } from '../db/audit';
import { circuitGate, recordCircuitOutcome } from '../db/llm-circuits';
import { grantChecks } from './lib/grant-checks';
import type { ActivityDeps } from './deps';
import { activityKey } from './keys';
import { proposeCoaFields, validateCoaProposal, type CoaAttempt } from './llm/coa';
import type { LlmProviderName } from './llm/types';

const SYSTEM = 'system:coa-extraction';

export function coaExtractionActivities({ db, mailer, mailDomain, llm }: ActivityDeps) {
  const checks = grantChecks({ db, mailer, mailDomain });
  return {
    /**
     * Proposes the certificate's fields: each configured provider whose circuit lets it through, then the rules.
     * The proposal, its validation (refused values and why) and its provenance are stored; the run learns only the
     * source. A proposal already stored (a retry after the worker died) is kept.
     */
    async proposeCoaExtraction(args: { extractionId: string }): Promise<{ source: string }> {
      const row = await db('coa_extractions').where({ id: args.extractionId }).first('text', 'stage', 'source');
      if (!row) throw ApplicationFailure.nonRetryable(`extraction ${args.extractionId} is not recorded`, 'NotFound');
      if (row.stage !== 'requested') return { source: row.source };
      const open: CoaAttempt[] = [];
      const allowed: LlmProviderName[] = [];
      for (const provider of llm?.order ?? []) {
        const gate = await circuitGate(db, provider, llm!.circuit, new Date());
        if (gate.allowed) allowed.push(provider);
        else open.push({ provider, outcome: 'circuit_open' as CoaAttempt['outcome'], model: null });
      }
      const proposal = await proposeCoaFields(llm, row.text, { providers: allowed });
      for (const a of proposal.attempts) {
        if (a.provider === 'rule_based' || a.outcome === 'not_configured') continue;
        const failed = a.outcome !== 'succeeded' && a.outcome !== 'validation_failed';
        await recordCircuitOutcome(db, a.provider, failed ? 'failure' : 'success', failed ? a.outcome : null, llm!.circuit);
      }
      await db.transaction(async (trx) => {
        const updated = await trx('coa_extractions')
          .where({ id: args.extractionId, stage: 'requested' })
          .update({
            stage: 'proposed',
            source: proposal.source,
            ai_generated: proposal.aiGenerated,
            model: proposal.model,
            prompt_version: proposal.promptVersion,
            prompt_hash: proposal.promptHash,
            parameters: JSON.stringify(proposal.parameters),
            attempts: JSON.stringify([...open, ...proposal.attempts]),
            validation: JSON.stringify(proposal.validation),
            proposed_at: trx.fn.now(),
          });
        if (!updated) return;
        await appendAudit(trx, {
          actor: SYSTEM,
          action: 'coa.proposed',
          entityType: 'coa_extraction',
          entityId: args.extractionId,
          details: {
            source: proposal.source,
            model: proposal.model,
            ok: proposal.validation.ok,
            issues: proposal.validation.issues.length,
          },
          idempotencyKey: activityKey(),
        });
      });
      return { source: proposal.source };
    },

    /**
     * Records the fields a quality person confirmed or corrected, with the grant it consumes, in one transaction.
     * Every confirmed value must be written in the certificate (a correction too); the corrections against the
     * proposal are kept with the record.
     */
    async recordCoaConfirmation(args: ConfirmCoaArgs & { workflowId: string; extractionId: string }): Promise<{ confirmedBy: string }> {
      const ref = {
        workflowId: args.workflowId,
        entityType: 'coa_extraction',
        entityId: args.extractionId,
        label: `CoA extraction ${args.extractionId}`,
        link: `/api/v1/coa-extractions/${args.extractionId}`,
      };
      return checks.recording(ref, 'coa.confirm', async (trx) => {
        const row = await trx('coa_extractions').where({ id: args.extractionId }).forUpdate().first();
        if (!row || coaWorkflowId(row.id) !== args.workflowId) throw ApplicationFailure.nonRetryable('the extraction is gone', 'NotFound');
        const actor = await checks.granted(
          trx,
          { workflowId: args.workflowId },
          {
            grantId: args.grant,
            action: 'coa.confirm',
            actor: args.actor,
            args: coaGrantedArgs.confirm({ extractionId: row.id, fields: args.fields }),
          },
          (user) => user.active && user.roles.includes('qa_manager'),
        );
        if (row.stage === 'confirmed') return { confirmedBy: actor.username };
        const verdict = validateCoaProposal(row.text, args.fields);
        if (!verdict.ok) {
          throw ApplicationFailure.create({
            type: 'InvalidInput',
            message: `confirmed fields not in the certificate: ${verdict.issues.map((i) => `${i.field} (${i.code})`).join(', ')}`,
            nonRetryable: true,
          });
        }
        const proposed = (row.validation?.accepted ?? {}) as Record<string, unknown>;
        const corrections = Object.entries(args.fields)
          .filter(([k, v]) => JSON.stringify(proposed[k] ?? null) !== JSON.stringify(v))
          .map(([field, to]) => ({ field, from: proposed[field] ?? null, to }));
        await trx('coa_extractions')
          .where({ id: row.id })
          .update({
            stage: 'confirmed',
            confirmed_fields: JSON.stringify(args.fields),
            corrections: JSON.stringify(corrections),
            confirmed_by: actor.userId,
            confirmed_at: trx.fn.now(),
          });
        await appendAudit(trx, {
          actorId: actor.userId,
          actor: actor.username,
          action: 'coa.confirmed',
          entityType: 'coa_extraction',
          entityId: row.id,
          details: { workflowId: args.workflowId, sampleId: row.sample_id, corrected: corrections.map((c) => c.field), grant: args.grant },
          idempotencyKey: activityKey(),
        });
        return { confirmedBy: actor.username };
      });
    },
  };
}
