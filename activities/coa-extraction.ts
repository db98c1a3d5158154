import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Knex } from 'knex';
import {
  coaGrantedArgs,
  coaWorkflowId,
  type CoaAttemptResult,
  type CoaProvider,
  type ConfirmCoaArgs,
  type RejectCoaArgs,
} from '../common/coa-extraction';
import { appendAudit } from '../db/audit';
import { circuitGate, recordCircuitOutcome } from '../db/llm-circuits';
import { grantChecks, type RecordRef } from './lib/grant-checks';
import type { ActivityDeps } from './deps';
import { activityKey } from './keys';
import { callTimeoutMs, LLM_FAILURE_TYPES, providerFailure } from './llm/attempt-failure';
import { buildCoaPrompt, proposeCoaFields, ruleBasedProposal, validateCoaProposal, type CoaAttempt, type CoaProposal } from './llm/coa';
import { classifyLlmError } from './llm/errors';
import type { LlmProviderName } from './llm/types';

const SYSTEM = 'system:coa-extraction';

export interface CoaAttemptArgs {
  extractionId: string;
  maxTokens: number;
}

const extractionRef = (workflowId: string, extractionId: string): RecordRef => ({
  workflowId,
  entityType: 'coa_extraction',
  entityId: extractionId,
  label: `CoA extraction ${extractionId}`,
  link: `/api/v1/coa-extractions/${extractionId}`,
});

/** An attempt row as the extraction's provenance lists it. */
function trailEntry(a: {
  provider: CoaProvider;
  outcome: string;
  model: string | null;
  issues: CoaAttempt['issues'] | null;
  try: number;
  max_tokens: number;
}): CoaAttempt {
  return {
    provider: a.provider,
    outcome: a.outcome as CoaAttempt['outcome'],
    model: a.model,
    ...(a.issues ? { issues: a.issues } : {}),
    try: a.try,
    maxTokens: a.max_tokens,
  };
}

export function coaExtractionActivities({ db, mailer, mailDomain, llm }: ActivityDeps) {
  const checks = grantChecks({ db, mailer, mailDomain });

  async function certificateText(extractionId: string): Promise<string> {
    const row = await db('coa_extractions').where({ id: extractionId }).first('text');
    if (!row) throw ApplicationFailure.nonRetryable(`extraction ${extractionId} is not recorded`, 'NotFound');
    return row.text;
  }

  /** One provider call's row: a failed try has its own, an answer (validated or not) one per activity. */
  async function recordAttempt(
    args: CoaAttemptArgs,
    provider: CoaProvider,
    outcome: string,
    startedAt: Date,
    extra: Partial<{ model: string; detail: string; issues: unknown; text: string; parameters: unknown; prompt: { templateVersion: string; templateHash: string } }> = {},
  ): Promise<string> {
    const { attempt } = Context.current().info;
    const answered = outcome === 'succeeded' || outcome === 'validation_failed';
    const key = activityKey(answered ? 'answer' : `try${attempt}`);
    await db('coa_extraction_attempts')
      .insert({
        idempotency_key: key,
        extraction_id: args.extractionId,
        provider,
        try: attempt,
        max_tokens: args.maxTokens,
        outcome,
        model: extra.model ?? null,
        error_detail: extra.detail ?? null,
        issues: extra.issues ? JSON.stringify(extra.issues) : null,
        answer_text: extra.text ?? null,
        parameters: extra.parameters ? JSON.stringify(extra.parameters) : null,
        prompt_version: extra.prompt?.templateVersion ?? null,
        prompt_hash: extra.prompt?.templateHash ?? null,
        latency_ms: Date.now() - startedAt.getTime(),
        started_at: startedAt,
      })
      .onConflict('idempotency_key')
      .ignore();
    return (await db('coa_extraction_attempts').where({ idempotency_key: key }).first('id')).id;
  }

  /**
   * One call of one provider, as the summary's: circuit, prompt, call, the error table's verdict (retry the same
   * provider, or not), the attempt's row and the circuit's count. An answer is validated against the certificate
   * here; one that fails validation is not retried (the run asks the next provider).
   */
  async function attempt(provider: CoaProvider, args: CoaAttemptArgs): Promise<CoaAttemptResult> {
    const done = await db('coa_extraction_attempts').where({ idempotency_key: activityKey('answer') }).first('id', 'outcome');
    if (done) return { attemptId: done.id, ok: done.outcome === 'succeeded' };
    const startedAt = new Date();
    const text = await certificateText(args.extractionId);
    const adapter = llm?.providers[provider];
    if (!llm || !adapter) {
      await recordAttempt(args, provider, 'not_configured', startedAt);
      throw ApplicationFailure.create({ type: LLM_FAILURE_TYPES.not_configured, message: `${provider} is not configured`, nonRetryable: true });
    }
    const gate = await circuitGate(db, provider, llm.circuit, new Date());
    if (!gate.allowed) {
      await recordAttempt(args, provider, 'circuit_open', startedAt, { detail: `open until ${gate.openUntil.toISOString()}` });
      throw ApplicationFailure.create({ type: LLM_FAILURE_TYPES.circuit_open, message: `${provider}: circuit open`, nonRetryable: true });
    }
    const prompt = buildCoaPrompt(text);
    const ctx = Context.current();
    let answer;
    try {
      answer = await adapter.generate(prompt, {
        maxTokens: args.maxTokens,
        temperature: 0,
        signal: ctx.cancellationSignal,
        timeoutMs: callTimeoutMs(ctx.info.startToCloseTimeoutMs),
      });
    } catch (err) {
      const e = classifyLlmError(provider as LlmProviderName, err);
      await recordAttempt(args, provider, e.kind, startedAt, { detail: e.message });
      throw await providerFailure({ db, mailer, mailDomain }, llm, provider, e, 'CoA extraction');
    }
    const validation = validateCoaProposal(text, answer.text);
    const id = await recordAttempt(args, provider, validation.ok ? 'succeeded' : 'validation_failed', startedAt, {
      model: answer.model,
      issues: validation.ok ? undefined : validation.issues,
      text: answer.text,
      parameters: answer.parameters,
      prompt,
    });
    await recordCircuitOutcome(db, provider, 'success', null, llm.circuit);
    return { attemptId: id, ok: validation.ok };
  }

  /** Stores a proposal once (a retry after the worker died finds it stored), with its audit event. */
  async function saveProposal(extractionId: string, proposal: CoaProposal): Promise<void> {
    await db.transaction(async (trx) => {
      const updated = await trx('coa_extractions')
        .where({ id: extractionId, stage: 'requested' })
        .update({
          stage: 'proposed',
          source: proposal.source,
          ai_generated: proposal.aiGenerated,
          model: proposal.model,
          prompt_version: proposal.promptVersion,
          prompt_hash: proposal.promptHash,
          parameters: JSON.stringify(proposal.parameters),
          attempts: JSON.stringify(proposal.attempts),
          validation: JSON.stringify(proposal.validation),
          proposed_at: trx.fn.now(),
        });
      if (!updated) return;
      await appendAudit(trx, {
        actor: SYSTEM,
        action: 'coa.proposed',
        entityType: 'coa_extraction',
        entityId: extractionId,
        details: {
          source: proposal.source,
          model: proposal.model,
          ok: proposal.validation.ok,
          issues: proposal.validation.issues.length,
          attempts: proposal.attempts.length,
        },
        idempotencyKey: activityKey(),
      });
    });
  }

  /**
   * The confirmed values become the incoming inspection's recorded values: a new version of the sample's record,
   * naming the extraction and who confirmed it when (the same instant as the confirmation), in its transaction.
   */
  async function recordOnInspection(
    trx: Knex.Transaction,
    row: { id: string; sample_id: string | null },
    fields: ConfirmCoaArgs['fields'],
    actor: { userId: string; username: string },
  ): Promise<number | null> {
    if (!row.sample_id) return null;
    const sample = await trx('samples').where({ id: row.sample_id }).forNoKeyUpdate().first('id', 'accession');
    if (!sample) throw ApplicationFailure.nonRetryable('the inspection sample is gone', 'NotFound');
    const latest = await trx('incoming_inspection_records').where({ sample_id: sample.id }).max('version as version').first();
    const version = Number(latest?.version ?? 0) + 1;
    await trx('incoming_inspection_records').insert({
      sample_id: sample.id,
      version,
      supplier: fields.supplier,
      product: fields.product,
      lot_number: fields.lotNumber,
      expiry_date: fields.expiryDate,
      parameters: JSON.stringify(fields.parameters),
      coa_extraction_id: row.id,
      confirmed_by: actor.userId,
      confirmed_at: trx.fn.now(),
    });
    await appendAudit(trx, {
      actorId: actor.userId,
      actor: actor.username,
      action: 'incoming_inspection.recorded',
      entityType: 'sample',
      entityId: sample.accession,
      details: { sampleId: sample.id, version, coaExtractionId: row.id, lotNumber: fields.lotNumber },
      idempotencyKey: activityKey('inspection'),
    });
    return version;
  }

  /** The extraction, locked, and the quality person whose grant for this decision is consumed (as Postgres knows them). */
  async function decision(
    trx: Knex.Transaction,
    args: { workflowId: string; extractionId: string; grant: string; actor: ConfirmCoaArgs['actor'] },
    action: 'coa.confirm' | 'coa.reject',
    bound: unknown,
  ) {
    const row = await trx('coa_extractions').where({ id: args.extractionId }).forNoKeyUpdate().first();
    if (!row || coaWorkflowId(row.id) !== args.workflowId) throw ApplicationFailure.nonRetryable('the extraction is gone', 'NotFound');
    const actor = await checks.granted(
      trx,
      { workflowId: args.workflowId },
      { grantId: args.grant, action, actor: args.actor, args: bound },
      (user) => user.active && user.roles.includes('qa_manager'),
    );
    return { row, actor };
  }

  return {
    /**
     * Runs started before each provider was its own activity: every provider asked once here, then the rules.
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
        else open.push({ provider, outcome: 'circuit_open', model: null });
      }
      const proposal = await proposeCoaFields(llm, row.text, { providers: allowed });
      for (const a of proposal.attempts) {
        if (a.provider === 'rule_based' || a.outcome === 'not_configured') continue;
        const failed = a.outcome !== 'succeeded' && a.outcome !== 'validation_failed';
        await recordCircuitOutcome(db, a.provider, failed ? 'failure' : 'success', failed ? a.outcome : null, llm!.circuit);
      }
      await saveProposal(args.extractionId, { ...proposal, attempts: [...open, ...proposal.attempts] });
      return { source: proposal.source };
    },

    coaWithAnthropic: (args: CoaAttemptArgs) => attempt('anthropic', args),
    coaWithOpenai: (args: CoaAttemptArgs) => attempt('openai', args),
    coaWithOllama: (args: CoaAttemptArgs) => attempt('ollama', args),

    /**
     * Stores the proposal the run chose: the validated answer of an attempt, or (none) the rule-based one. Its
     * provenance lists every attempt row of the extraction, in order, then the rules where they proposed.
     */
    async storeCoaProposal(args: { extractionId: string; attemptId: string | null }): Promise<{ source: string }> {
      const row = await db('coa_extractions').where({ id: args.extractionId }).first('text', 'stage', 'source');
      if (!row) throw ApplicationFailure.nonRetryable(`extraction ${args.extractionId} is not recorded`, 'NotFound');
      if (row.stage !== 'requested') return { source: row.source };
      const rows = await db('coa_extraction_attempts').where({ extraction_id: args.extractionId }).orderBy([{ column: 'recorded_at' }, { column: 'try' }]);
      const trail = rows.map(trailEntry);
      const chosen = args.attemptId ? rows.find((a) => a.id === args.attemptId) : undefined;
      let proposal: CoaProposal;
      if (chosen) {
        proposal = {
          source: chosen.provider,
          aiGenerated: true,
          model: chosen.model,
          promptVersion: chosen.prompt_version,
          promptHash: chosen.prompt_hash,
          parameters: chosen.parameters ?? {},
          validation: validateCoaProposal(row.text, chosen.answer_text),
          attempts: trail,
        };
      } else {
        const fallback = ruleBasedProposal(row.text);
        proposal = { ...fallback, attempts: [...trail, ...fallback.attempts] };
      }
      await saveProposal(args.extractionId, proposal);
      return { source: proposal.source };
    },

    /**
     * Records the fields a quality person confirmed or corrected, with the grant it consumes, in one transaction:
     * on the extraction (with the corrections against the proposal) and, for an extraction of an incoming
     * inspection's sample, as the inspection's recorded values. Every confirmed value must be written in the
     * certificate (a correction too).
     */
    async recordCoaConfirmation(args: ConfirmCoaArgs & { workflowId: string; extractionId: string }): Promise<{ confirmedBy: string }> {
      return checks.recording(extractionRef(args.workflowId, args.extractionId), 'coa.confirm', async (trx) => {
        const { row, actor } = await decision(trx, args, 'coa.confirm', coaGrantedArgs.confirm({ extractionId: args.extractionId, fields: args.fields }));
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
        const inspectionVersion = await recordOnInspection(trx, row, args.fields, actor);
        await appendAudit(trx, {
          actorId: actor.userId,
          actor: actor.username,
          action: 'coa.confirmed',
          entityType: 'coa_extraction',
          entityId: row.id,
          details: {
            workflowId: args.workflowId,
            sampleId: row.sample_id,
            inspectionVersion,
            corrected: corrections.map((c) => c.field),
            grant: args.grant,
          },
          idempotencyKey: activityKey(),
        });
        return { confirmedBy: actor.username };
      });
    },

    /** A quality person rejects the proposal: the extraction ends with nothing recorded anywhere, the reason kept. */
    async recordCoaRejection(args: RejectCoaArgs & { workflowId: string; extractionId: string }): Promise<{ rejectedBy: string }> {
      return checks.recording(extractionRef(args.workflowId, args.extractionId), 'coa.reject', async (trx) => {
        const { row, actor } = await decision(trx, args, 'coa.reject', coaGrantedArgs.reject({ extractionId: args.extractionId, reason: args.reason }));
        if (row.stage === 'rejected') return { rejectedBy: actor.username };
        await trx('coa_extractions')
          .where({ id: row.id })
          .update({ stage: 'rejected', rejected_by: actor.userId, rejected_at: trx.fn.now(), rejection_reason: args.reason });
        await appendAudit(trx, {
          actorId: actor.userId,
          actor: actor.username,
          action: 'coa.rejected',
          entityType: 'coa_extraction',
          entityId: row.id,
          details: { workflowId: args.workflowId, sampleId: row.sample_id, grant: args.grant },
          idempotencyKey: activityKey(),
        });
        return { rejectedBy: actor.username };
      });
    },
  };
}
