import { ApplicationFailure } from '@temporalio/common';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { z } from 'zod';
import { boundAnalysisArgs, enterResultUpdate } from '../../common/results';
import { toActor } from '../../db/identity';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { analysisRun, dropUnappliedEntry, entryColumns, loadAnalysis, writeEntry, type AnalysisRow } from '../services/results';
import { resultBody } from '../schemas/results';
import { accessionParams } from '../schemas/sample-intake';
import { analysisParams } from '../schemas/results';
import { grantAction } from '../signing';
import { markWebhookEventApplied } from '../../db/sample-webhooks';
import type { Actor } from '../../common/roles';

/**
 * A result an instrument (or its middleware) reports for a routed test: the value as the analyser gave it, who ran
 * it, the instrument and the message it came in, signed by the source like every inbound event.
 */
export const resultReportBody = z.strictObject({
  eventId: z.string().min(1).max(200),
  type: z.literal('result.reported'),
  occurredAt: z.iso.datetime({ offset: true }).optional(),
  accession: accessionParams.shape.accession,
  test: analysisParams.shape.test,
  /** The instrument's own message ID (e.g. an ASTM/HL7 message control ID), kept with the entry. */
  messageId: z.string().min(1).max(200),
  result: resultBody,
});
export type ResultReport = z.infer<typeof resultReportBody>;

export interface PreparedReport {
  row: AnalysisRow;
  actor: Actor;
  columns: Record<string, unknown>;
}

/**
 * Everything that could refuse a report, checked before it is recorded: the analysis exists and is open, the value
 * fits the test's policy, and the source has a contact who may enter results (the entry is theirs, the instrument
 * and the performer are as reported). A refusal is the sender's to fix: 4xx, nothing recorded.
 */
export async function prepareResultReport(
  deps: Pick<ApiDeps, 'db' | 'temporal'>,
  source: { name: string; contact_user_id: string | null },
  body: ResultReport,
): Promise<PreparedReport> {
  const { db } = deps;
  const contact = source.contact_user_id ? await db('users').where({ id: source.contact_user_id, active: true }).first() : undefined;
  if (!contact || !contact.roles.some((r: string) => r === 'lab_technician' || r === 'lab_director')) {
    throw problems.unprocessable(
      'source-cannot-enter-results',
      `source ${source.name} has no active contact with a laboratory role; results it reports would have no one answerable for their entry`,
    );
  }
  const row = await loadAnalysis(db, body.accession, body.test);
  analysisRun(deps, row);
  const columns = await entryColumns(db, row.test_code, body.result);
  return { row, actor: toActor(contact), columns: { ...columns, message_id: body.messageId, reported_by_source: source.name } };
}

/**
 * Enters the reported result as a person's entry would be: a pending entry, a single-use grant for the source's
 * contact, the run's Update (its validator and recording step judge it as any entry). A refusal removes the entry.
 * The run then submits it by the instrument path and its rule set judges it; answers the analysis's state after.
 */
export async function applyResultReport(deps: ApiDeps, source: string, body: ResultReport, prepared: PreparedReport): Promise<string> {
  const { db } = deps;
  const { row, actor, columns } = prepared;
  const entryId = await writeEntry(db, row.id, actor, columns);
  let state: string;
  try {
    const args = { entryId };
    const grant = await grantAction(deps, actor, {
      workflowId: row.workflow_id,
      action: 'analysis.enter',
      args: boundAnalysisArgs('analysis.enter', args),
    });
    state = (await analysisRun(deps, row).executeUpdate(enterResultUpdate, { args: [{ ...args, actor, grant }] })).state;
  } catch (err) {
    await dropUnappliedEntry(db, entryId);
    const cause = err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure ? err.cause : null;
    if (cause) throw problems.conflict('result-refused', `the analysis refused the result: ${cause.message}`);
    throw err;
  }
  await markWebhookEventApplied(db, source, body.eventId, row.accession);
  return state;
}
