import { ApplicationFailure } from '@temporalio/activity';
import type { Knex } from 'knex';
import { FailureType } from '../common/failures';
import { workflowIds } from '../common/ids';
import { boundReportReleaseArgs, REPORT_RELEASE, type ReportInput } from '../common/reports';
import { FINAL_ANALYSIS_STATES } from '../common/results';
import type { SignatureInput } from '../common/signatures';
import { appendAudit } from '../db/audit';
import { withdrawCallsOfRetested, withdrawOpenCall } from '../db/critical-calls';
import { queueNotifications } from '../db/notifications';
import { resolveRecipients, type Recipient } from '../db/recipients';
import { assembleReportContent, correctionOf } from '../db/reports';
import { RESULT_RELEASE } from '../db/gate';
import { recordSignature } from '../db/signatures';
import type { ActivityDeps } from './deps';
import { activityKey } from './keys';
import { grantChecks } from './lib/grant-checks';
import { renderReportPdf } from './report-pdf';
import { gateInTransaction } from './training';
import { sha256Hex } from './report-hash';

/** A report as its run names it: IDs only. */
export interface ReportRef {
  workflowId: string;
  reportId: string;
  sampleId: string;
  accession: string;
  version: number;
}

const nonRetryable = (type: FailureType, message: string) => ApplicationFailure.create({ type, message, nonRetryable: true });
const OPEN_ANALYSIS_STATES = ['pending', 'resulted', 'to_be_verified', 'verified', 'autoverified'];
/** An analysis is settled once it ends: released, or ended without a result (cancelled, retracted, rejected). */
const SETTLED_ANALYSIS_STATES: readonly string[] = FINAL_ANALYSIS_STATES;

/** The lab as its reports print it, when the worker was given no settings (LAB_NAME, LAB_ADDRESS). */
export const DEFAULT_LAB = { name: 'labflow laboratory', address: '' };


/** Something to report and nothing waiting: a verified result, or a specimen rejected in full; no test still open. */
const reportable = (r: { unverified: unknown[]; verifiedAnalyses: unknown[]; rejectedInFull: boolean }) =>
  r.unverified.length === 0 && (r.verifiedAnalyses.length > 0 || r.rejectedInFull);

export function reportActivities(deps: ActivityDeps) {
  const { db, publicUrl, mailDomain } = deps;
  const lab = deps.lab ?? DEFAULT_LAB;
  const checks = grantChecks(deps);
  const requireGate = gateInTransaction(deps);
  const link = (accession: string, version: number) => `${publicUrl}/api/v1/samples/${accession}/reports/v${version}`;

  const audit = (
    trx: Knex.Transaction,
    ref: { workflowId: string; accession: string; version: number },
    action: string,
    actor: { userId: string; username: string } | null,
    details: Record<string, unknown>,
    suffix = '',
  ) =>
    appendAudit(trx, {
      actorId: actor?.userId ?? null,
      actor: actor?.username ?? 'system:reports',
      action,
      entityType: 'report',
      entityId: ref.workflowId,
      details: { accession: ref.accession, version: ref.version, ...details },
      idempotencyKey: activityKey(suffix),
    });

  /**
   * Whether every accepted test of the sample has a verified result or has ended, and there is something to report:
   * a verified result, or a specimen rejected in full (its condition and disposition are the report, 493.1291(c)(7)).
   */
  async function readyToReport(q: Knex | Knex.Transaction, sampleId: string): Promise<boolean> {
    return reportable(await assembleReportContent(q, sampleId, null));
  }

  return {
    /**
     * Whether a sample's first report is due: every accepted test verified (or ended without a result), and no
     * report yet. Answers the run to start; starting it twice joins the one running.
     */
    async reportDue(p: { sampleId: string; accession: string }): Promise<{ workflowId: string | null }> {
      const existing = await db('reports').where({ sample_id: p.sampleId }).first('id');
      if (existing || !(await readyToReport(db, p.sampleId))) return { workflowId: null };
      return { workflowId: workflowIds.report(p.accession, 1) };
    },

    /**
     * Assembles a report version: the first when the sample is ready; a correction only when the API wrote its row
     * (the lab director's request, with its reason). The content (PHI) is stored in Postgres; the run gets IDs.
     */
    async assembleReport(p: {
      workflowId: string;
      input: ReportInput;
    }): Promise<{ reportId: string; state: 'awaiting_release' | 'released' }> {
      const { input, workflowId } = p;
      if (workflowId !== workflowIds.report(input.accession, input.version))
        throw nonRetryable(FailureType.NotFound, `${workflowId} is not a report run`);
      return db.transaction(async (trx) => {
        await trx('samples').where({ id: input.sampleId, accession: input.accession }).forNoKeyUpdate().first('id');
        const existing = await trx('reports').where({ workflow_id: workflowId }).first();
        if (input.version > 1 && (!existing || existing.corrects_report_id !== input.corrects)) {
          throw nonRetryable(FailureType.NotFound, `no correction was requested as ${workflowId}`);
        }
        if (existing?.state === 'released') return { reportId: existing.id, state: 'released' as const };
        const correction = existing ? await correctionOf(trx, existing) : null;
        const readiness = await assembleReportContent(trx, input.sampleId, correction);
        const { content, contentHash, verifiedAnalyses } = readiness;
        if (input.version === 1 && !reportable(readiness)) {
          throw nonRetryable(FailureType.ActionsOpen, `${input.accession} has tests without a verified result`);
        }
        const columns = { content: JSON.stringify(content), content_hash: contentHash, analysis_ids: verifiedAnalyses.map((a) => a.id) };
        let reportId: string;
        if (existing) {
          reportId = existing.id;
          await trx('reports').where({ id: reportId }).update(columns);
        } else {
          const [row] = await trx('reports')
            .insert({ workflow_id: workflowId, sample_id: input.sampleId, accession: input.accession, version: input.version, ...columns })
            .returning('id');
          reportId = row.id;
        }
        const ref = { workflowId, accession: input.accession, version: input.version };
        await audit(trx, ref, 'report.assembled', null, { reportId, tests: content.tests.length, corrects: correction?.version ?? null });
        await queueNotifications(
          trx,
          await resolveRecipients(trx, [{ kind: 'role', role: 'lab_director' }]),
          {
            idempotencyKey: `report-ready:${workflowId}`,
            kind: 'report.ready',
            title: `${correction ? 'Corrected report' : 'Report'} ${input.accession} v${input.version} is ready to release`,
            body: `Every test of ${input.accession} has a verified result. Read the report and release it with your signature.`,
            link: link(input.accession, input.version),
            email: false,
          },
          mailDomain,
        );
        return { reportId, state: 'awaiting_release' as const };
      });
    },

    /**
     * Releases a report version with the lab director's signature, in one transaction with the proof: every test
     * must still be verified and the content what the director signed; the PDF/A is rendered and stored with its
     * SHA-256; the analyses shown become released; the submitter and the sample's ordering provider (read here, under
     * the sample's lock, and recorded on the version) are told (in-app and email) and `report.released` published. A retry after a crash finds its own release and answers it again.
     */
    async releaseReport(p: {
      ref: ReportRef;
      proof: { grant: unknown; actor: unknown; signature: SignatureInput; requestId?: string | null };
    }): Promise<{ outboxIds: string[]; analyses: string[]; pdfSha256: string; releasedBy: string }> {
      const { ref, proof } = p;
      const recordRef = {
        workflowId: ref.workflowId,
        entityType: 'report',
        entityId: ref.workflowId,
        label: `report ${ref.accession} v${ref.version}`,
        link: link(ref.accession, ref.version),
      };
      return checks.recording(recordRef, REPORT_RELEASE, async (trx) => {
        const row = await checks.ownedByRun(trx, ref, 'reports', ref.reportId);
        const actor = await checks.granted(
          trx,
          ref,
          {
            grantId: proof.grant,
            action: REPORT_RELEASE,
            actor: proof.actor,
            args: boundReportReleaseArgs(proof),
            signature: { meaning: proof.signature.meaning, contentHash: proof.signature.contentHash },
          },
          (user) => user.roles.includes('lab_director'),
        );
        const signatureKey = activityKey('signature');
        if (row.state === 'released') {
          const own = await trx('signatures').where({ idempotency_key: signatureKey }).first('id');
          if (own?.id !== row.signature_id)
            throw nonRetryable(FailureType.WrongStage, `report ${ref.accession} v${ref.version} is already released`);
          const analyses = await trx('analyses').whereIn('id', row.analysis_ids).pluck('workflow_id');
          const outboxIds = await trx('email_outbox')
            .where('idempotency_key', 'like', `report-released:${ref.workflowId}:%`)
            .where('state', 'pending')
            .pluck('id');
          return { outboxIds, analyses, pdfSha256: row.pdf_sha256, releasedBy: actor.userId };
        }
        await requireGate(trx, actor, { activity: RESULT_RELEASE, roles: ['lab_director'] }, { entityType: 'report', entityId: ref.workflowId });
        const sample = await trx('samples').where({ id: ref.sampleId }).forNoKeyUpdate().first('submitter_id', 'ordering_provider_id');
        // The ordering provider as PostgreSQL has them now (the sample row is locked: a change waits or came first);
        // the content assembled below names the same provider, read in this transaction.
        const orderingProviderId: string | null = sample?.ordering_provider_id ?? null;
        // The sample's analyses are locked before the content is assembled: a retraction, retest or rejection
        // recorded at the same moment waits, so the signed report never shows a result withdrawn meanwhile.
        await trx('analyses').where({ sample_id: ref.sampleId }).forNoKeyUpdate().select('id');
        const correction = await correctionOf(trx, row);
        const { content, contentHash, unverified, verifiedAnalyses } = await assembleReportContent(trx, ref.sampleId, correction);
        if (unverified.length) {
          throw nonRetryable(
            FailureType.ActionsOpen,
            `tests without a verified result: ${unverified.map((u) => `${u.test} (${u.state})`).join(', ')}`,
          );
        }
        if (contentHash !== proof.signature.contentHash) {
          throw nonRetryable(
            FailureType.StaleContentHash,
            'the report changed since it was read; read it again and sign what it now shows',
          );
        }
        const signatureId = await recordSignature(trx, {
          idempotencyKey: signatureKey,
          entityType: 'report',
          entityId: ref.workflowId,
          workflowId: ref.workflowId,
          round: ref.version,
          stageIndex: 0,
          stageName: 'release',
          actor,
          signature: proof.signature,
        });
        const signed = await trx('signatures').where({ id: signatureId }).first('signed_at');
        const signedAt = new Date(signed.signed_at).toISOString();
        const pdf = await renderReportPdf({
          content,
          version: ref.version,
          lab,
          reportDate: signedAt,
          contentHash,
          signature: { printedName: actor.printedName, username: actor.username, meaning: proof.signature.meaning, signedAt },
        });
        const pdfSha256 = sha256Hex(pdf);
        await trx('reports')
          .where({ id: ref.reportId, state: 'awaiting_release' })
          .update({
            state: 'released',
            content: JSON.stringify(content),
            content_hash: contentHash,
            analysis_ids: verifiedAnalyses.map((a) => a.id),
            pdf,
            pdf_sha256: pdfSha256,
            signature_id: signatureId,
            released_by: actor.userId,
            released_at: signedAt,
            release_request_id: proof.requestId ?? null,
            ordering_provider_id: orderingProviderId,
          });
        const releasing = verifiedAnalyses.filter((a) => a.state !== 'released');
        for (const a of releasing) {
          const moved = await trx('analyses').where({ id: a.id, state: a.state, frozen: false }).update({ state: 'released', updated_at: trx.fn.now() });
          if (moved !== 1) throw nonRetryable(FailureType.StaleContentHash, 'a result on the report changed while it was released; read it again');
          await appendAudit(trx, {
            actorId: actor.userId,
            actor: actor.username,
            action: 'analysis.released',
            entityType: 'analysis',
            entityId: a.workflowId,
            details: { accession: ref.accession, report: ref.workflowId, signatureId },
            idempotencyKey: activityKey(`analysis:${a.id}`),
          });
        }
        // Told: the submitter and the ordering provider, once each (one notice and one email when they are the same person).
        const deliveredTo = [...new Set([sample?.submitter_id, orderingProviderId].filter((id): id is string => !!id))];
        await audit(trx, ref, 'report.released', actor, {
          reportId: ref.reportId,
          signatureId,
          pdfSha256,
          corrects: correction?.version ?? null,
          deliveredTo: { submitter: sample?.submitter_id ?? null, orderingProvider: orderingProviderId },
        });
        const recipients: Recipient[] = deliveredTo.length
          ? await trx('users').whereIn('id', deliveredTo).where({ active: true }).orderBy('id').select('id', 'username', 'email', 'printed_name')
          : [];
        const outboxIds = await queueNotifications(
          trx,
          recipients,
          {
            idempotencyKey: `report-released:${ref.workflowId}`,
            kind: correction ? 'report.corrected' : 'report.released',
            title: correction
              ? `CORRECTED report for ${ref.accession} (v${ref.version}, replaces v${correction.version})`
              : `Report for ${ref.accession} released (v${ref.version})`,
            body: correction
              ? `A corrected report for sample ${ref.accession} was released; it replaces version ${correction.version}. Read it in labflow.`
              : `The report for sample ${ref.accession} was released by the lab director. Read it in labflow.`,
            link: link(ref.accession, ref.version),
          },
          mailDomain,
        );
        return { outboxIds, analyses: verifiedAnalyses.map((a) => a.workflowId), pdfSha256, releasedBy: actor.userId };
      });
    },

    /** The state Postgres shows for an analysis: its run adopts a release or cancellation made without it. */
    async analysisRecordedState(p: { analysisId: string }): Promise<{ state: string; frozen: boolean }> {
      const row = await db('analyses').where({ id: p.analysisId }).first('state', 'frozen');
      return { state: row.state, frozen: row.frozen };
    },

    /**
     * Cancels the open analyses of tests a rejection took (the whole specimen, or some tests), once Postgres shows
     * them rejected: the rejection was recorded with its proof. Answers the analysis runs to tell and the runs of the
     * critical-value calls it withdrew on retested analyses (their own analyses' runs have ended), a retry the same.
     */
    async cancelAnalysesOfRejection(p: { sampleId: string; accession: string; tests: string[] }): Promise<{ workflowIds: string[]; supersededCalls: string[] }> {
      return db.transaction(async (trx) => {
        const sample = await trx('samples').where({ id: p.sampleId }).forNoKeyUpdate().first('rejected_tests');
        const rejected = ((sample?.rejected_tests as string[] | undefined) ?? []).filter((t) => p.tests.includes(t));
        if (!rejected.length) return { workflowIds: [], supersededCalls: [] };
        // The calls it may withdraw are locked before its first audit event (a call's own steps lock the call first).
        await trx('critical_calls').where({ sample_id: p.sampleId }).whereIn('test_code', rejected).orderBy('id').forNoKeyUpdate().select('id');
        const cause = { action: 'analysis.cancel', why: 'specimen rejected' };
        const cancelled: { id: string; workflow_id: string; test_code: string }[] = await trx('analyses')
          .where({ sample_id: p.sampleId, frozen: false })
          .whereIn('test_code', rejected)
          .whereIn('state', OPEN_ANALYSIS_STATES)
          .update({ state: 'cancelled', reason: 'specimen rejected', updated_at: trx.fn.now() })
          .returning(['id', 'workflow_id', 'test_code']);
        for (const a of cancelled) {
          await appendAudit(trx, {
            actor: 'system:results',
            action: 'analysis.cancelled',
            entityType: 'analysis',
            entityId: a.workflow_id,
            details: { accession: p.accession, test: a.test_code, reason: 'specimen rejected' },
            idempotencyKey: activityKey(a.id),
          });
          // Its open critical-value call is withdrawn with it; the analysis's run, told of the cancellation, tells the call's run.
          await withdrawOpenCall(trx, {
            analysisId: a.id,
            reason: 'cancelled',
            by: null,
            cause: { analysis: a.workflow_id, ...cause },
            auditKey: activityKey(`${a.id}:critical-call-withdrawn`),
          });
        }
        // A call still open on a retested analysis of these tests (its retest was cancelled above) is withdrawn too; its
        // analysis's run has ended, so the sample's run tells the call's run. A retry answers the calls withdrawn already.
        const supersededCalls = await withdrawCallsOfRetested(trx, {
          retested: await trx('analyses').where({ sample_id: p.sampleId, frozen: true }).whereIn('test_code', rejected).orderBy('id').pluck('id'),
          reason: 'cancelled',
          by: null,
          cause,
          auditKey: activityKey('critical-call-retested'),
        });
        // A retry after a crash finds them cancelled already: it answers them all the same, so their runs are told.
        const ended: string[] = await trx('analyses')
          .where({ sample_id: p.sampleId, frozen: false, state: 'cancelled', reason: 'specimen rejected' })
          .whereIn('test_code', rejected)
          .pluck('workflow_id');
        return { workflowIds: [...new Set([...cancelled.map((a) => a.workflow_id), ...ended])], supersededCalls };
      });
    },

    /** Whether every accepted test's newest analysis has ended (and there is one at least). */
    async sampleTestsSettled(p: { sampleId: string }): Promise<{ settled: boolean; analyses: number }> {
      const sample = await db('samples').where({ id: p.sampleId }).first('requested_tests', 'rejected_tests');
      const accepted = (sample.requested_tests as string[]).filter((t) => !(sample.rejected_tests as string[]).includes(t));
      const rows: { test_code: string; state: string }[] = await db('analyses')
        .where({ sample_id: p.sampleId, frozen: false })
        .whereIn('test_code', accepted)
        .select('test_code', 'state');
      const settled =
        accepted.length > 0 && accepted.every((t) => rows.some((r) => r.test_code === t && SETTLED_ANALYSIS_STATES.includes(r.state)));
      return { settled, analyses: rows.length };
    },
  };
}
