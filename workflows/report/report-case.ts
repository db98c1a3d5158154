import { getExternalWorkflowHandle, upsertSearchAttributes } from '@temporalio/workflow';
import type { ReportRef } from '../../activities/reports';
import { analysisRecordChangedSignal, type ReleaseReportArgs, type ReportInput, type ReportState } from '../../common/reports';
import { Assignees, EntityId, EntityType, Stage } from '../../common/search-attributes';
import { db, OutboxDeliveries } from '../lib';
import { refuseAsRecorded } from '../lib/proof';

/**
 * One version of a sample's report: assembled in Postgres, released by the lab director's signature, and then its
 * analyses told that they are released. The run holds IDs only; the report's content and PDF are in Postgres.
 */
export class ReportCase {
  readonly state: ReportState;
  private ref: ReportRef | null = null;
  readonly outbox = new OutboxDeliveries();

  constructor(
    private readonly input: ReportInput,
    workflowId: string,
  ) {
    this.state = {
      workflowId,
      accession: input.accession,
      version: input.version,
      state: 'assembling',
      reportId: null,
      corrects: input.corrects,
      analyses: [],
      releasedBy: null,
    };
  }

  async assemble(): Promise<void> {
    this.publish();
    const { reportId, state } = await db.assembleReport({ workflowId: this.state.workflowId, input: this.input });
    this.ref = {
      workflowId: this.state.workflowId,
      reportId,
      sampleId: this.input.sampleId,
      accession: this.input.accession,
      version: this.input.version,
    };
    this.state.reportId = reportId;
    this.state.state = state;
    this.publish();
  }

  async release(args: ReleaseReportArgs & { requestId?: string | null }): Promise<void> {
    if (!this.ref) throw new Error('the report is not assembled yet');
    const released = await db
      .releaseReport({
        ref: this.ref,
        proof: { grant: args.grant, actor: args.actor, signature: args.signature, requestId: args.requestId ?? null },
      })
      // A refusal by the recording step (an unproven action, a test no longer verified, a stale hash, the gate) refuses the Update.
      .catch(refuseAsRecorded);
    this.state.state = 'released';
    this.state.releasedBy = released.releasedBy;
    this.state.analyses = released.analyses;
    this.publish();
    this.outbox.deliver(released.outboxIds);
  }

  /** Each analysis shown looks at its record again and ends released (a run already ended is not told). */
  async tellAnalyses(): Promise<void> {
    for (const workflowId of this.state.analyses) {
      await getExternalWorkflowHandle(workflowId)
        .signal(analysisRecordChangedSignal)
        .catch(() => undefined);
    }
  }

  private publish(): void {
    const s = this.state;
    upsertSearchAttributes([
      { key: EntityType, value: 'report' },
      { key: EntityId, value: `${s.accession}:v${s.version}` },
      { key: Stage, value: s.state },
      { key: Assignees, value: s.state === 'awaiting_release' ? ['role:lab_director'] : null },
    ]);
  }
}
