import { createHash } from 'node:crypto';
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type { Knex } from 'knex';
import type { Actor } from '../common/roles';
import type { SignatureInput } from '../common/signatures';
import {
  FINAL_SUMMARY_STAGES,
  soapGrantedArgs,
  type SoapAction,
  type Summarizer,
  type SummaryStage,
  type SupersedeArgs,
} from '../common/soap-summary';
import { appendAudit } from '../db/audit';
import { circuitGate, recordCircuitOutcome } from '../db/llm-circuits';
import { recordSignature } from '../db/signatures';
import { closeTasksByPrefix } from '../db/tasks';
import type { GrantedUser } from '../db/grants';
import { notesFingerprint, notesForSummary, patientIdentifiers } from '../db/soap-notes';
import { grantChecks, Refusal, type RecordRef } from './lib/grant-checks';
import type { ActivityDeps } from './deps';
import { activityKey } from './keys';
import { callTimeoutMs, LLM_FAILURE_TYPES, providerFailure } from './llm/attempt-failure';
import { classifyLlmError, type LlmError } from './llm/errors';
import { extractiveSummary } from './llm/extractive';
import { buildSummaryPrompt, stripIdentifiers } from './llm/prompt';
import type { LlmProviderName, NoteForSummary } from './llm/types';
import { validateSummary } from './llm/validate';

export interface SummaryAttemptArgs {
  workflowId: string;
  round: number;
  maxTokens: number;
}

export interface SummaryAttemptResult {
  attemptId: string;
  model: string;
  latencyMs: number;
  outputTokens: number | null;
}

const FAILURE_TYPES = LLM_FAILURE_TYPES;

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const SYSTEM = 'system:soap-summary';

/** The record a summary run acts on, as the security trail and the operators' alert name it: IDs only, no PHI. */
/** The key prefix of a summary round's review tasks (opened where the requester's review was handed over). */
export const reviewTaskPrefix = (workflowId: string, round: number) => `${workflowId}:r${round}:review:`;

export const jobRef = (workflowId: string, patientId: string | null): RecordRef => ({
  workflowId,
  entityType: 'patient',
  entityId: patientId ?? workflowId.split(':')[1] ?? 'unknown',
  label: `summary job ${workflowId}`,
  link: `/api/v1/summary-jobs/${encodeURIComponent(workflowId)}`,
});

/** The job's notes are still the patient's notes exactly when their fingerprint is unchanged. */
async function jobNotesCurrent(trx: Knex.Transaction, job: { patient_id: string; notes_hash: string }): Promise<boolean> {
  const fingerprint = await notesFingerprint(trx, job.patient_id);
  return fingerprint.noteIds.length > 0 && fingerprint.notesHash === job.notes_hash;
}

export function soapSummaryActivities({ db, mailer, mailDomain, llm }: ActivityDeps) {
  const checks = grantChecks({ db, mailer, mailDomain });
  const recording = <T>(workflowId: string, patientId: string | null, action: SoapAction, work: (trx: Knex.Transaction) => Promise<T>) =>
    checks.recording(jobRef(workflowId, patientId), action, work);

  /**
   * Who may review a patient's summary, as Postgres knows them now: an active clinician on the patient's care
   * team. The care team is read (and held) in the recording transaction, so a removal cannot slip in between.
   */
  async function careTeamReviewer(trx: Knex.Transaction, patientId: string): Promise<(user: GrantedUser) => boolean> {
    await trx('patients').where({ id: patientId }).forShare().first('id');
    const team = new Set<string>(await trx('patient_clinicians').where({ patient_id: patientId }).pluck('user_id'));
    return (user) => user.active && user.roles.includes('clinician') && team.has(user.id);
  }

  /** The job's notes, with the patient's identifiers stripped: the minimum a summary needs. */
  async function notesOf(workflowId: string): Promise<{ notes: NoteForSummary[]; patient: { dateOfBirth: string; sex: string | null } }> {
    const job = await db('summary_jobs').where({ workflow_id: workflowId }).first('patient_id', 'note_ids');
    if (!job) throw ApplicationFailure.nonRetryable(`summary job ${workflowId} is not recorded`, 'NotFound');
    const [rows, who] = await Promise.all([notesForSummary(db, job.note_ids), patientIdentifiers(db, job.patient_id)]);
    if (!who) throw ApplicationFailure.nonRetryable('the patient is no longer recorded', 'NotFound');
    const strip = (text: string) => stripIdentifiers(text, who);
    const notes = rows.map((n) => ({
      noteTime: n.noteTime,
      subjective: strip(n.subjective),
      objective: strip(n.objective),
      assessment: strip(n.assessment),
      plan: strip(n.plan),
    }));
    return { notes, patient: { dateOfBirth: who.dateOfBirth, sex: who.sex ?? null } };
  }

  async function recordAttempt(
    args: SummaryAttemptArgs,
    provider: Summarizer,
    outcome: string,
    startedAt: Date,
    extra: {
      model?: string;
      detail?: string;
      inputTokens?: number | null;
      outputTokens?: number | null;
      text?: string;
      prompt?: { templateVersion: string; templateHash: string };
      parameters?: Record<string, unknown>;
    },
  ): Promise<string> {
    const { attempt } = Context.current().info;
    // A success is recorded once per activity, whatever happens to the worker after; each failed try has its own row.
    const key = activityKey(outcome === 'succeeded' ? 'ok' : `try${attempt}`);
    await db('summary_attempts')
      .insert({
        idempotency_key: key,
        workflow_id: args.workflowId,
        round: args.round,
        provider,
        model: extra.model ?? null,
        outcome,
        error_detail: extra.detail ?? null,
        latency_ms: Date.now() - startedAt.getTime(),
        input_tokens: extra.inputTokens ?? null,
        output_tokens: extra.outputTokens ?? null,
        max_tokens: args.maxTokens,
        candidate_text: extra.text ?? null,
        prompt_version: extra.prompt?.templateVersion ?? null,
        prompt_hash: extra.prompt?.templateHash ?? null,
        parameters: extra.parameters ? JSON.stringify(extra.parameters) : null,
        started_at: startedAt,
      })
      .onConflict('idempotency_key')
      .ignore();
    return (await db('summary_attempts').where({ idempotency_key: key }).first('id')).id;
  }

  /** A success this activity already recorded (the worker died before reporting it): reuse, don't call again. */
  async function earlierSuccess(): Promise<{ id: string; model: string; latency_ms: number; output_tokens: number | null } | undefined> {
    return db('summary_attempts')
      .where({ idempotency_key: activityKey('ok') })
      .first('id', 'model', 'latency_ms', 'output_tokens');
  }

  async function fail(args: SummaryAttemptArgs, provider: LlmProviderName, err: LlmError, startedAt: Date): Promise<never> {
    await recordAttempt(args, provider, err.kind, startedAt, { detail: err.message });
    throw await providerFailure({ db, mailer, mailDomain }, llm!, provider, err, 'summarizer');
  }

  /** One call of one LLM provider: circuit, prompt, call, classification, the attempt's row, the circuit's count. */
  async function attempt(provider: LlmProviderName, args: SummaryAttemptArgs): Promise<SummaryAttemptResult> {
    const done = await earlierSuccess();
    if (done) return { attemptId: done.id, model: done.model, latencyMs: done.latency_ms, outputTokens: done.output_tokens };
    const startedAt = new Date();
    const adapter = llm?.providers[provider];
    if (!llm || !adapter) {
      await recordAttempt(args, provider, 'not_configured', startedAt, {});
      throw ApplicationFailure.create({ type: FAILURE_TYPES.not_configured, message: `${provider} is not configured`, nonRetryable: true });
    }
    const gate = await circuitGate(db, provider, llm.circuit, new Date());
    if (!gate.allowed) {
      await recordAttempt(args, provider, 'circuit_open', startedAt, { detail: `open until ${gate.openUntil.toISOString()}` });
      throw ApplicationFailure.create({ type: FAILURE_TYPES.circuit_open, message: `${provider}: circuit open`, nonRetryable: true });
    }
    const { notes, patient } = await notesOf(args.workflowId);
    const prompt = buildSummaryPrompt(notes, patient);
    const ctx = Context.current();
    // The run sets each provider's timeout; the call gets it less the time to record the outcome before Temporal's.
    const timeoutMs = callTimeoutMs(ctx.info.startToCloseTimeoutMs);
    let generation;
    try {
      generation = await adapter.generate(prompt, { maxTokens: args.maxTokens, temperature: 0, signal: ctx.cancellationSignal, timeoutMs });
    } catch (err) {
      return fail(args, provider, classifyLlmError(provider, err), startedAt);
    }
    const id = await recordAttempt(args, provider, 'succeeded', startedAt, {
      model: generation.model,
      inputTokens: generation.inputTokens,
      outputTokens: generation.outputTokens,
      text: generation.text,
      prompt,
      parameters: generation.parameters,
    });
    await recordCircuitOutcome(db, provider, 'success', null, llm.circuit);
    log.info('summarizer attempt succeeded', { provider, model: generation.model, outputTokens: generation.outputTokens });
    return { attemptId: id, model: generation.model, latencyMs: Date.now() - startedAt.getTime(), outputTokens: generation.outputTokens };
  }

  async function project(trx: Knex | Knex.Transaction, workflowId: string, rev: number, fields: Record<string, unknown>) {
    await trx('summary_jobs')
      .where({ workflow_id: workflowId })
      .andWhere('rev', '<', rev)
      .update({ ...fields, rev, updated_at: trx.fn.now() });
  }

  return {
    /**
     * Records the job and the notes it summarizes. `notesCurrent` is false when the notes changed between the
     * request and now: the run then ends superseded without calling anyone. A run that reuses a workflow ID (after
     * a failed or superseded one) continues its round numbers.
     */
    async openSummaryJob(args: {
      workflowId: string;
      patientId: string;
      notesHash: string;
      requestedBy: { userId: string; username: string };
      providers: Summarizer[];
      /** The run's revision for the 'generating' stage this writes when the notes are current. */
      rev: number;
    }): Promise<{ notesCurrent: boolean; round: number; noteCount: number }> {
      return db.transaction(async (trx) => {
        // A patient deleted before the run began: nothing to summarize, and no row to write.
        if (!(await trx('patients').where({ id: args.patientId }).first('id'))) return { notesCurrent: false, round: 1, noteCount: 0 };
        const fingerprint = await notesFingerprint(trx, args.patientId);
        const current = fingerprint.notesHash === args.notesHash;
        const previous = await trx('summary_attempts').where({ workflow_id: args.workflowId }).max('round as round').first();
        const round = Number(previous?.round ?? 0) + 1;
        const notesCurrent = current && fingerprint.noteIds.length > 0;
        const stage = notesCurrent ? { stage: 'generating', rev: args.rev } : { stage: 'requested', rev: 0 };
        await trx('summary_jobs')
          .insert({
            workflow_id: args.workflowId,
            patient_id: args.patientId,
            notes_hash: args.notesHash,
            note_ids: fingerprint.noteIds,
            note_hashes: fingerprint.noteHashes,
            ...stage,
            providers: args.providers,
            round,
            requested_by: args.requestedBy.userId,
          })
          .onConflict('workflow_id')
          .merge({
            ...stage,
            providers: args.providers,
            round,
            provider: null,
            finished_at: null,
            requested_by: args.requestedBy.userId,
            requested_at: trx.fn.now(),
            updated_at: trx.fn.now(),
          });
        await appendAudit(trx, {
          actorId: args.requestedBy.userId,
          actor: args.requestedBy.username,
          action: 'summary.requested',
          entityType: 'patient',
          entityId: args.patientId,
          details: { workflowId: args.workflowId, notes: fingerprint.noteIds.length, notesCurrent: current },
          idempotencyKey: activityKey(),
        });
        return { notesCurrent, round, noteCount: fingerprint.noteIds.length };
      });
    },

    summarizeWithAnthropic: (args: SummaryAttemptArgs) => attempt('anthropic', args),
    summarizeWithOpenai: (args: SummaryAttemptArgs) => attempt('openai', args),
    summarizeWithOllama: (args: SummaryAttemptArgs) => attempt('ollama', args),

    /** The last resort: no network, no model. Its text says it is not AI-generated. */
    async summarizeExtractive(args: SummaryAttemptArgs): Promise<SummaryAttemptResult> {
      const done = await earlierSuccess();
      if (done) return { attemptId: done.id, model: done.model, latencyMs: done.latency_ms, outputTokens: done.output_tokens };
      const startedAt = new Date();
      const { notes } = await notesOf(args.workflowId);
      const generation = extractiveSummary(notes);
      const id = await recordAttempt(args, 'extractive', 'succeeded', startedAt, {
        model: generation.model,
        text: generation.text,
        parameters: generation.parameters,
      });
      return { attemptId: id, model: generation.model, latencyMs: Date.now() - startedAt.getTime(), outputTokens: null };
    },

    /** Structure, coverage of medications, allergies and problems, and length. The verdict carries counts, not terms. */
    async validateSummaryCandidate(args: {
      attemptId: string;
      /** The run's revision for the 'validating' stage. */
      rev: number;
    }): Promise<{ ok: boolean; issues: { code: string; count: number }[] }> {
      const row = await db('summary_attempts').where({ id: args.attemptId }).first('workflow_id', 'candidate_text');
      if (!row?.candidate_text) throw ApplicationFailure.nonRetryable('the attempt has no text to validate', 'NotFound');
      await project(db, row.workflow_id, args.rev, { stage: 'validating' });
      const { notes } = await notesOf(row.workflow_id);
      const verdict = validateSummary(notes, row.candidate_text);
      await db('summary_attempts')
        .where({ id: args.attemptId })
        .update({ validation: JSON.stringify(verdict), ...(verdict.ok ? {} : { outcome: 'validation_failed' }) });
      return { ok: verdict.ok, issues: verdict.issues };
    },

    /** Makes a validated attempt the round's summary, with its provenance. */
    async storeSummary(args: {
      workflowId: string;
      round: number;
      attemptId: string;
      /** The run's revision for the 'ready' stage, written with the summary. */
      rev: number;
    }): Promise<{ summaryId: string; contentHash: string }> {
      return db.transaction(async (trx) => {
        const existing = await trx('summaries').where({ workflow_id: args.workflowId, round: args.round }).first('id', 'content_hash');
        if (existing) return { summaryId: existing.id, contentHash: existing.content_hash };
        const job = await trx('summary_jobs').where({ workflow_id: args.workflowId }).first();
        const chosen = await trx('summary_attempts').where({ id: args.attemptId }).first();
        const [row] = await trx('summaries')
          .insert({
            workflow_id: args.workflowId,
            round: args.round,
            patient_id: job.patient_id,
            attempt_id: chosen.id,
            text: chosen.candidate_text,
            ai_generated: chosen.provider !== 'extractive',
            provider: chosen.provider,
            model: chosen.model,
            prompt_version: chosen.prompt_version ?? 'none',
            prompt_hash: chosen.prompt_hash ?? 'none',
            parameters: JSON.stringify(chosen.parameters ?? {}),
            notes_hash: job.notes_hash,
            note_hashes: JSON.stringify(job.note_ids.map((id: string, i: number) => ({ noteId: id, contentHash: job.note_hashes[i] }))),
            validation: JSON.stringify(chosen.validation ?? {}),
            content_hash: sha256(chosen.candidate_text),
          })
          .returning(['id', 'content_hash']);
        await appendAudit(trx, {
          actor: SYSTEM,
          action: 'summary.stored',
          entityType: 'patient',
          entityId: job.patient_id,
          details: { workflowId: args.workflowId, summaryId: row.id, provider: chosen.provider, model: chosen.model, round: args.round },
          idempotencyKey: activityKey(),
        });
        await project(trx, args.workflowId, args.rev, { stage: 'ready', round: args.round, provider: chosen.provider });
        return { summaryId: row.id, contentHash: row.content_hash };
      });
    },

    async projectSummaryJob(args: { workflowId: string; rev: number; stage: SummaryStage; round: number; provider: Summarizer | null }) {
      await project(db, args.workflowId, args.rev, {
        stage: args.stage,
        round: args.round,
        provider: args.provider,
        finished_at: FINAL_SUMMARY_STAGES.includes(args.stage) ? db.fn.now() : null,
      });
    },

    /**
     * Approve, edit (both signed) or reject, in one transaction with the grant it consumes, the signature and the
     * audit event. The reviewer recorded is the grant's user as Postgres knows them, re-checked as an active
     * clinician on the patient's care team; a grant missing, used, expired, for another user, run or arguments,
     * or a signature whose password check it does not bind, is refused and nothing is written.
     */
    async recordSummaryReview(args: {
      workflowId: string;
      patientId: string;
      round: number;
      summaryId: string;
      actor: Actor;
      grant?: string;
      decision: 'approve' | 'edit' | 'reject';
      signature?: SignatureInput;
      editId?: string;
      commentId?: string;
      regenerate?: boolean;
    }): Promise<{ reviewedAt: string; contentHash: string; reviewer: string }> {
      const job = await db('summary_jobs').where({ workflow_id: args.workflowId }).first('patient_id');
      const patientId: string = job?.patient_id ?? args.patientId;
      return recording(args.workflowId, patientId, 'soap.review', async (trx) => {
        // The patient before the summary, as deleting a patient takes them.
        const reviewer = await careTeamReviewer(trx, patientId);
        const summary = await trx('summaries').where({ id: args.summaryId, workflow_id: args.workflowId }).forNoKeyUpdate().first();
        if (!summary || summary.patient_id !== patientId) throw ApplicationFailure.nonRetryable('the summary is gone', 'NotFound');
        const actor = await checks.granted(
          trx,
          { workflowId: args.workflowId },
          {
            grantId: args.grant,
            action: 'soap.review',
            actor: args.actor,
            args: soapGrantedArgs.review(args),
            signature: args.signature,
          },
          reviewer,
        );
        if (summary.review_decision) {
          // This activity's own retry after its commit: the grant it consumed then is found consumed by itself.
          return {
            reviewedAt: new Date(summary.reviewed_at).toISOString(),
            contentHash: summary.edited_content_hash ?? summary.content_hash,
            reviewer: actor.username,
          };
        }
        let contentHash = summary.content_hash as string;
        let edited: { text: string; content_hash: string } | undefined;
        if (args.decision === 'edit') {
          edited = await trx('summary_edits').where({ id: args.editId, summary_id: args.summaryId }).first('text', 'content_hash');
          if (!edited) throw ApplicationFailure.nonRetryable('the edited text is not recorded', 'NotFound');
          contentHash = edited.content_hash;
        }
        // The password check bound a content hash; it must be the hash of what is being signed.
        if (args.signature && args.signature.contentHash !== contentHash) throw new Refusal('signature_unverified', actor.userId);
        if (args.decision !== 'reject' && !args.signature) throw new Refusal('signature_unverified', actor.userId);
        let comment: { text: string } | undefined;
        if (args.commentId) {
          comment = await trx('summary_review_comments').where({ id: args.commentId, summary_id: args.summaryId }).first('text');
          if (!comment) throw ApplicationFailure.nonRetryable('the review comment is not recorded', 'NotFound');
        }
        const reviewedAt = args.signature?.signedAt ?? new Date().toISOString();
        await trx('summaries')
          .where({ id: args.summaryId })
          .update({
            status: args.decision === 'approve' ? 'approved' : args.decision === 'edit' ? 'edited' : 'rejected',
            edited_text: edited?.text ?? null,
            edited_content_hash: edited?.content_hash ?? null,
            reviewed_by: actor.userId,
            review_decision: args.decision,
            review_comment: comment?.text ?? null,
            reviewed_at: reviewedAt,
          });
        let signatureId: string | null = null;
        if (args.signature) {
          signatureId = await recordSignature(trx, {
            idempotencyKey: activityKey('signature'),
            entityType: 'soap-summary',
            entityId: args.summaryId,
            workflowId: args.workflowId,
            round: args.round,
            stageIndex: 0,
            stageName: 'review',
            actor,
            signature: { ...args.signature, contentHash },
          });
        }
        await appendAudit(trx, {
          actorId: actor.userId,
          actor: actor.username,
          action: `summary.${args.decision === 'edit' ? 'edited' : args.decision === 'approve' ? 'approved' : 'rejected'}`,
          entityType: 'patient',
          entityId: summary.patient_id,
          details: {
            workflowId: args.workflowId,
            summaryId: args.summaryId,
            round: args.round,
            signed: Boolean(args.signature),
            signatureId,
            // Links the record to the grant it consumed, which holds when the password was checked.
            grant: args.grant ?? null,
          },
          idempotencyKey: activityKey(),
        });
        await closeTasksByPrefix(trx, reviewTaskPrefix(args.workflowId, args.round), 'done');
        return { reviewedAt, contentHash, reviewer: actor.username };
      });
    },

    /**
     * The proof a supersedeSummary signal carries is the record itself: the notes the job summarizes are no longer
     * the patient's notes (a note was added, changed or deleted, which is also what a new request for the same
     * patient means). A notice Postgres does not bear out did not come from labflow: it is refused as a security
     * event and the run goes on. A replacing job, when named, must be a job of the same patient.
     */
    async confirmSummarySupersession(args: { workflowId: string; reason: SupersedeArgs['reason']; by: string | null }): Promise<void> {
      const job = await db('summary_jobs').where({ workflow_id: args.workflowId }).first('patient_id', 'notes_hash');
      await recording(args.workflowId, job?.patient_id ?? null, 'soap.supersede', async (trx) => {
        // labflow sends notices only to jobs it has recorded (openSummaryJobsOf): one for a job not yet recorded is not its.
        if (!job) throw new Refusal('not_superseded', null);
        const samePatient = args.by === null || args.by.split(':')[1] === job.patient_id;
        if (!samePatient || (await jobNotesCurrent(trx, job))) throw new Refusal('not_superseded', null);
      });
    },

    /** Ends the job: its final stage, and a summary still awaiting review marked superseded with it. */
    async endSummaryJob(args: {
      workflowId: string;
      rev: number;
      round: number;
      stage: SummaryStage;
      reason: string;
      supersededBy: string | null;
    }) {
      await db.transaction(async (trx) => {
        const job = await trx('summary_jobs').where({ workflow_id: args.workflowId }).first('patient_id');
        if (!job) return;
        await project(trx, args.workflowId, args.rev, { stage: args.stage, round: args.round, finished_at: trx.fn.now() });
        if (args.stage === 'superseded') {
          await trx('summaries').where({ workflow_id: args.workflowId, status: 'ready' }).update({ status: 'superseded' });
        }
        await closeTasksByPrefix(trx, `${args.workflowId}:`, 'cancelled');
        await appendAudit(trx, {
          actor: SYSTEM,
          action: `summary.${args.stage}`,
          entityType: 'patient',
          entityId: job.patient_id,
          details: { workflowId: args.workflowId, round: args.round, reason: args.reason, supersededBy: args.supersededBy },
          idempotencyKey: activityKey(),
        });
      });
    },
  };
}
