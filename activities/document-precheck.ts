import { ApplicationFailure } from '@temporalio/activity';
import type { ChecklistItem, DocumentPrecheckInput } from '../common/document-precheck';
import { appendAudit } from '../db/audit';
import { latestChecklist } from '../db/prechecks';
import { circuitGate, recordCircuitOutcome } from '../db/llm-circuits';
import type { ActivityDeps } from './deps';
import { activityKey } from './keys';
import { alertOperators } from './llm/operator-alert';
import { runPrecheckChain, type PrecheckAttempt } from './llm/precheck';
import type { LlmProviderName } from './llm/types';
import { deliverOutbox } from './notifications';

const SYSTEM = 'system:document-precheck';

export interface PrecheckOutcome {
  source: string;
  met: number;
  notMet: number;
  unclear: number;
  dropped: number;
}

export function documentPrecheckActivities({ db, mailer, mailDomain, llm }: ActivityDeps) {
  return {
    /**
     * Checks the version's text against its type's latest checklist (each provider whose circuit lets it through,
     * then the keyword rules) and stores the findings, what was dropped and the provenance. Writes nothing else: the
     * findings are advice, the version's state and signatures are the approval run's. A finished pre-check (a retry
     * after the worker died) is kept. Returns counts only.
     */
    async runDocumentPrecheck(args: DocumentPrecheckInput & { workflowId: string }): Promise<PrecheckOutcome> {
      const version = await db('document_versions as v')
        .join('documents as d', 'd.id', 'v.document_id')
        .join('document_contents as c', 'c.hash', 'v.content_hash')
        .where('v.id', args.versionId)
        .first('v.content_hash', 'c.content', 'd.doc_type');
      if (!version) throw ApplicationFailure.nonRetryable(`version ${args.versionId} is not recorded`, 'NotFound');
      await db('document_prechecks')
        .insert({ workflow_id: args.workflowId, document_version_id: args.versionId, content_hash: version.content_hash, doc_type: version.doc_type })
        .onConflict('workflow_id')
        .ignore();
      const row = await db('document_prechecks').where({ workflow_id: args.workflowId }).first();
      if (row.stage === 'done') return outcomeOf(row);

      const checklist = await latestChecklist(db, version.doc_type);
      if (!checklist || checklist.items.length === 0) {
        await finish(args, { stage: 'failed', failure: 'no_checklist' }, { failure: 'no_checklist', docType: version.doc_type });
        throw ApplicationFailure.nonRetryable(`no pre-check checklist is configured for ${version.doc_type} documents`, 'NoChecklist');
      }

      const open: PrecheckAttempt[] = [];
      const allowed: LlmProviderName[] = [];
      for (const provider of llm?.order ?? []) {
        const gate = await circuitGate(db, provider, llm!.circuit, new Date());
        if (gate.allowed) allowed.push(provider);
        else open.push({ provider, outcome: 'circuit_open', model: null });
      }
      const result = await runPrecheckChain(llm, version.content, checklist.items as ChecklistItem[], {
        providers: allowed,
        onFailure: async (provider, kind) => deliverOutbox({ db, mailer }, await alertOperators(db, mailDomain, { provider, kind })).then(() => undefined),
      });
      for (const a of result.attempts) {
        if (a.provider === 'rule_based' || a.outcome === 'not_configured') continue;
        const failed = a.outcome !== 'succeeded' && a.outcome !== 'validation_failed';
        await recordCircuitOutcome(db, a.provider, failed ? 'failure' : 'success', failed ? a.outcome : null, llm!.circuit);
      }
      const counts = {
        met: result.findings.filter((f) => f.status === 'met').length,
        notMet: result.findings.filter((f) => f.status === 'not_met').length,
        unclear: result.findings.filter((f) => f.status === 'unclear').length,
        dropped: result.dropped.length,
      };
      await finish(
        args,
        {
          stage: 'done',
          checklist_version: checklist.version,
          source: result.source,
          ai_generated: result.aiGenerated,
          model: result.model,
          prompt_version: result.promptVersion,
          prompt_hash: result.promptHash,
          parameters: JSON.stringify(result.parameters),
          attempts: JSON.stringify([...open, ...result.attempts]),
          fallback_used: result.fallbackUsed || open.length > 0,
          findings: JSON.stringify(result.findings),
          dropped: JSON.stringify(result.dropped),
        },
        { source: result.source, model: result.model, checklistVersion: checklist.version, ...counts },
      );
      return { source: result.source, ...counts };
    },
  };

  async function finish(args: DocumentPrecheckInput & { workflowId: string }, update: Record<string, unknown>, details: Record<string, unknown>) {
    await db.transaction(async (trx) => {
      const updated = await trx('document_prechecks')
        .where({ workflow_id: args.workflowId, stage: 'running' })
        .update({ ...update, completed_at: trx.fn.now() });
      if (!updated) return;
      await appendAudit(trx, {
        actor: SYSTEM,
        action: update.stage === 'done' ? 'document.precheck_done' : 'document.precheck_failed',
        entityType: 'document',
        entityId: args.documentNumber,
        details: { workflowId: args.workflowId, version: args.version, ...details },
        idempotencyKey: activityKey(),
      });
    });
  }
}

function outcomeOf(row: { source: string; findings: { status: string }[]; dropped: unknown[] }): PrecheckOutcome {
  return {
    source: row.source,
    met: row.findings.filter((f) => f.status === 'met').length,
    notMet: row.findings.filter((f) => f.status === 'not_met').length,
    unclear: row.findings.filter((f) => f.status === 'unclear').length,
    dropped: row.dropped.length,
  };
}
