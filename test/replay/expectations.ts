import assert from 'node:assert/strict';
import type { SummaryState } from '../../common/soap-summary';
import { encryptionKeyIdsIn } from '../../workers/replay';
import { workflowTypeOf, type NamedFixture } from '../helpers/replay-suite';

/** What one process folder of test/fixtures/histories/ must hold, beyond "every history replays". */
export interface FolderExpectation {
  /** Completes "has fixtures ..." in the test's name. */
  covers: string;
  minFixtures: number;
  workflowId: RegExp;
  /** A real run records more than a start and an end. */
  minEvents: number;
  workflowTypes: string[];
  more?: (fixtures: NamedFixture[]) => void;
}

const endsInContinueAsNew = (f: NamedFixture) => f.history.events?.some((e) => e.workflowExecutionContinuedAsNewEventAttributes) ?? false;
const beganAsContinuation = (f: NamedFixture) =>
  Boolean(f.history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId);

/** Every payload's data in a history, as text. */
export function payloadTexts(value: unknown, found: string[] = []): string[] {
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return found;
  const v = value as { metadata?: unknown; data?: unknown };
  if (typeof v.metadata === 'object' && ArrayBuffer.isView(v.data)) {
    found.push(Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength).toString('utf8'));
  }
  for (const child of Object.values(value)) payloadTexts(child, found);
  return found;
}

/** Whether a history recorded the marker of this patch. */
const patchedWith = (f: NamedFixture, patch: string) =>
  f.history.events?.some((e) => e.markerRecordedEventAttributes && payloadTexts(e.markerRecordedEventAttributes).some((t) => t.includes(patch))) ?? false;

/** How a summary run ended: the stage it returned, or 'failed'. */
function summaryEndingOf(f: NamedFixture): string {
  const last = f.history.events?.at(-1);
  if (last?.workflowExecutionFailedEventAttributes) return 'failed';
  const result = last?.workflowExecutionCompletedEventAttributes?.result?.payloads?.[0];
  assert.ok(result, `${f.file} ends with a result`);
  return (JSON.parse(payloadTexts(result)[0]) as SummaryState).stage;
}

export const expectations: Record<string, FolderExpectation> = {
  'coa-extraction': {
    covers:
      "for a certificate proposed by the rule-based fallback and confirmed with a correction (before 'coa-provider-attempts'), and one whose providers were each their own activity (retried, a larger budget), rejected",
    minFixtures: 2,
    workflowId: /^coa-extraction:[0-9a-f-]{36}$/,
    minEvents: 10,
    workflowTypes: ['coaExtractionWorkflow'],
  },
  'bulk-export': {
    covers: 'for a completed bulk export, one refused by the run for outgrowing the limit, and the expiry of an old file',
    minFixtures: 3,
    workflowId: /^bulk-export:[0-9a-f-]{36}$|^bulk-export-expiry:capture-[0-9a-f]{6}$/,
    minEvents: 11,
    workflowTypes: ['bulkExportExpiryWorkflow', 'bulkExportWorkflow'],
    more(fixtures) {
      const endings = fixtures
        .filter((f) => workflowTypeOf(f) === 'bulkExportWorkflow')
        .map((f) => JSON.parse(payloadTexts(f.history.events?.at(-1)?.workflowExecutionCompletedEventAttributes?.result)[0] ?? '{}').state);
      assert.deepEqual(endings.sort(), ['completed', 'failed']);
    },
  },
  'document-approval': {
    covers: 'for every ending a version can reach, one recorded before a patch, one that started its pre-check',
    minFixtures: 6,
    workflowId: /^document-approval:[A-Z0-9-]+:v\d+$/,
    minEvents: 21,
    workflowTypes: ['documentApprovalWorkflow'],
    more(fixtures) {
      const startsPrecheck = (f: NamedFixture) =>
        f.history.events?.some((e) => e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowType?.name === 'documentPrecheckWorkflow') ?? false;
      assert.ok(fixtures.some(startsPrecheck), 'an approval run that started its pre-check (the document-precheck patch)');
    },
  },
  'document-precheck': {
    covers: 'for a rule-based pre-check that found its findings and one that failed for want of a checklist',
    minFixtures: 2,
    workflowId: /^document-precheck:[A-Z0-9-]+:v\d+$/,
    minEvents: 10,
    workflowTypes: ['documentPrecheckWorkflow'],
    more(fixtures) {
      const endings = fixtures.map((f) => (f.history.events?.at(-1)?.workflowExecutionFailedEventAttributes ? 'failed' : 'completed'));
      assert.deepEqual(endings.sort(), ['completed', 'failed']);
    },
  },
  capa: {
    covers: 'for the CAPA lifecycle, one run that continued as new and its continuation',
    minFixtures: 5,
    workflowId: /^capa:CAPA-\d{4}-\d{4,}$/,
    minEvents: 1,
    workflowTypes: ['capaWorkflow'],
    more(fixtures) {
      assert.ok(fixtures.some(endsInContinueAsNew), 'a history that ends in continue-as-new');
      assert.ok(fixtures.some(beganAsContinuation), 'a history that began as a continuation');
    },
  },
  equipment: {
    covers: "for an instrument's life, every run of a chain of continue-as-new: a lapse, a renewal, a failed QC's CAPA, a defect, maintenance and retirement",
    minFixtures: 2,
    workflowId: /^instrument:[A-Z0-9][A-Z0-9_-]{1,63}$/,
    minEvents: 20,
    workflowTypes: ['instrumentWorkflow'],
    more(fixtures) {
      assert.ok(fixtures.some(endsInContinueAsNew), 'a history that ends in continue-as-new');
      assert.ok(fixtures.some(beganAsContinuation), 'a history that began as a continuation');
      const events = fixtures.flatMap((f) => f.history.events ?? []);
      assert.ok(events.some((e) => e.timerFiredEventAttributes), 'a timer that fired (an expiry or a reminder)');
      assert.ok(events.some((e) => e.startChildWorkflowExecutionInitiatedEventAttributes), 'a CAPA started by a failed QC');
      assert.ok(events.some((e) => e.signalExternalWorkflowExecutionInitiatedEventAttributes), 'a defect linked to the open CAPA');
      for (const f of fixtures) assert.deepEqual(encryptionKeyIdsIn(f.history), [], `${f.file} holds encrypted payloads`);
    },
  },
  'erp-sync': {
    covers: 'for the ERP sync (one run that continued as new) and a supplier qualification',
    minFixtures: 3,
    workflowId: /^(erp-sync:all|supplier-qualification:[\w ]+)$/,
    minEvents: 11,
    workflowTypes: ['erpSyncWorkflow', 'supplierQualificationWorkflow'],
    more(fixtures) {
      assert.ok(fixtures.some(endsInContinueAsNew), 'a history that ends in continue-as-new');
    },
  },
  'sample-intake': {
    covers: 'for acceptance, rejection, deviation, timers and a batch, and (patched rejection-tells-withdrawn-calls) a rejection that told the withdrawn call of a retested value',
    minFixtures: 5,
    workflowId: /^(sample-intake:ACC-\d{8}|sample-batch:[0-9a-f-]{36})$/,
    minEvents: 16,
    workflowTypes: ['sampleBatchWorkflow', 'sampleIntakeWorkflow'],
    more(fixtures) {
      const batch = fixtures.find((f) => workflowTypeOf(f) === 'sampleBatchWorkflow');
      assert.ok(
        batch?.history.events?.some((e) => e.startChildWorkflowExecutionInitiatedEventAttributes),
        'a batch that started intake runs as children',
      );
      const toldCall = (f: NamedFixture) =>
        f.history.events?.some((e) => {
          const signal = e.signalExternalWorkflowExecutionInitiatedEventAttributes;
          return signal?.signalName === 'criticalCallRecordChanged' && /^critical-call:/.test(signal.workflowExecution?.workflowId ?? '');
        }) ?? false;
      assert.ok(
        fixtures.some((f) => patchedWith(f, 'rejection-tells-withdrawn-calls') && toldCall(f)),
        "a rejection whose run told a withdrawn call (patched 'rejection-tells-withdrawn-calls')",
      );
    },
  },
  results: {
    covers:
      'for a released result with two verifications, a retest that froze its original, a retraction and a cancellation (from before autoverification), an autoverified result and one the rules sent to a person, a critical result that started its call, an instrument result submitted by the instrument path, a critical result whose call an edit withdrew, called again and withdrawn by the cancellation, and a retest whose result withdrew the call of the value it retests',
    minFixtures: 11,
    workflowId: /^analysis:ACC-\d{8}:[A-Z0-9_-]{1,32}(:\d+)?$/,
    minEvents: 10,
    workflowTypes: ['analysisWorkflow'],
    more(fixtures) {
      assert.ok(
        fixtures.some((f) => f.history.events?.some((e) => e.startChildWorkflowExecutionInitiatedEventAttributes)),
        'an analysis that started its retest as a child',
      );
      assert.ok(fixtures.some((f) => /:\d+$/.test(f.workflowId)), 'a retest run');
      assert.ok(
        fixtures.some((f) => f.history.events?.some((e) => e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowType?.name === 'criticalCallWorkflow')),
        "a critical result that started its call (patched('critical-call'))",
      );
      const judged = fixtures.filter((f) => JSON.stringify(f.history).includes('autoverifyAnalysis'));
      assert.ok(judged.length >= 2 && judged.length < fixtures.length, 'runs judged by a rule set beside runs from before autoverification');
      assert.ok(
        fixtures.some((f) => JSON.stringify(f.history).includes('submitReportedResult')),
        'a result the instrument path submitted (patched instrument-submit)',
      );
      assert.ok(
        fixtures.some((f) =>
          f.history.events?.some((e) => e.signalExternalWorkflowExecutionInitiatedEventAttributes?.signalName === 'criticalCallRecordChanged'),
        ),
        "a critical result whose call was withdrawn, told by a signal (patched 'critical-call-withdrawal')",
      );
      assert.ok(
        fixtures.some(
          (f) =>
            /:\d+$/.test(f.workflowId) &&
            f.history.events?.some((e) => {
              const told = e.signalExternalWorkflowExecutionInitiatedEventAttributes;
              return told?.signalName === 'criticalCallRecordChanged' && !told.workflowExecution?.workflowId?.startsWith(`critical-call:${f.workflowId.slice('analysis:'.length)}`);
            }),
        ),
        "a retest whose result told its original's call it was withdrawn",
      );
      // Stored decoded, so they replay under any key set; the runs carry entry IDs, never values.
      for (const f of fixtures) assert.deepEqual(encryptionKeyIdsIn(f.history), [], `${f.file} holds encrypted payloads`);
    },
  },
  bookings: {
    covers: 'for a booking approved by a single approver, checked into and checked out at end + grace, and one bumped when its instrument went into maintenance',
    minFixtures: 2,
    workflowId: /^booking:[0-9a-f-]{36}$/,
    minEvents: 10,
    workflowTypes: ['bookingWorkflow'],
    more(fixtures) {
      const events = fixtures.flatMap((f) => f.history.events ?? []);
      assert.ok(events.some((e) => e.timerFiredEventAttributes), 'a timer that fired (the automatic check-out)');
      assert.ok(events.some((e) => e.workflowExecutionSignaledEventAttributes), 'a run told of its bump');
      for (const f of fixtures) assert.deepEqual(encryptionKeyIdsIn(f.history), [], `${f.file} holds encrypted payloads`);
    },
  },
  'critical-calls': {
    covers:
      'for a call escalated after failed attempts (one a mismatched read-back) and confirmed by the lab director, one escalated at once for want of an ordering provider, and (patched critical-call-withdrawal) one withdrawn by an edit after an attempt reached someone, a second call withdrawn by the cancellation of its analysis and one withdrawn by the result of its retest, (patched critical-call-rereads-record) an escalated call confirmed by the lab director while it waited to read its record again, and (patched critical-call-told-of-every-withdrawal) the escalated call of a retested value withdrawn by the rejection of its specimen and ended by the signal of the sample run',
    minFixtures: 7,
    workflowId: /^critical-call:ACC-\d{8}:[A-Z0-9_-]{1,32}(:\d+)?(:call-\d+)?$/,
    minEvents: 10,
    workflowTypes: ['criticalCallWorkflow'],
    more(fixtures) {
      const ran = (f: NamedFixture, activity: string) =>
        f.history.events?.some((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activity) ?? false;
      const startedNotice = (f: NamedFixture) =>
        f.history.events?.some((e) => e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowType?.name === 'noticeWorkflow') ?? false;
      assert.ok(fixtures.filter((f) => ran(f, 'escalateCriticalCall')).every(startedNotice), 'each escalation started its urgent notice');
      const withdrawn = fixtures.filter((f) => ran(f, 'criticalCallWithdrawal'));
      assert.ok(
        withdrawn.length >= 3 && withdrawn.every((f) => f.history.events?.some((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'criticalCallRecordChanged')),
        'withdrawn calls, each told by a signal',
      );
      assert.ok(withdrawn.some(startedNotice), 'a withdrawal after an attempt reached someone started its notice');
      assert.ok(fixtures.some((f) => f.workflowId.endsWith(':call-2')), "an analysis's second call");
      assert.ok(
        fixtures.some((f) => patchedWith(f, 'critical-call-rereads-record') && ran(f, 'escalateCriticalCall')),
        "an escalated call waiting to read its record again (patched 'critical-call-rereads-record')",
      );
      const toldBySample = (f: NamedFixture) =>
        f.history.events?.some((e) => /^sample-intake:/.test(e.workflowExecutionSignaledEventAttributes?.externalWorkflowExecution?.workflowId ?? '')) ?? false;
      const endedWithdrawn = (f: NamedFixture) =>
        JSON.parse(payloadTexts(f.history.events?.at(-1)?.workflowExecutionCompletedEventAttributes?.result)[0] ?? '{}').state === 'withdrawn';
      assert.ok(
        fixtures.some((f) => patchedWith(f, 'critical-call-told-of-every-withdrawal') && toldBySample(f) && endedWithdrawn(f) && !patchedWith(f, 'critical-call-rereads-record')),
        "an escalated call withdrawn by its specimen's rejection and told by the sample run, reading no record (patched 'critical-call-told-of-every-withdrawal')",
      );
      for (const f of fixtures) assert.deepEqual(encryptionKeyIdsIn(f.history), [], `${f.file} holds encrypted payloads`);
    },
  },
  reports: {
    covers:
      'for a first report released with a signature, its correction released as v2, a rejected specimen reported, and a release accepted while the run was assembling',
    minFixtures: 4,
    workflowId: /^report:ACC-\d{8}:v\d+$/,
    minEvents: 10,
    workflowTypes: ['reportWorkflow'],
    more(fixtures) {
      assert.ok(fixtures.some((f) => f.workflowId.endsWith(':v2')), 'a correction');
      const acceptedWhileAssembling = (f: NamedFixture) => {
        const events = f.history.events ?? [];
        const accepted = events.findIndex((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
        const assembledAt = events.findIndex((e) => e.activityTaskCompletedEventAttributes);
        return accepted >= 0 && assembledAt > accepted;
      };
      assert.ok(fixtures.some(acceptedWhileAssembling), 'a release accepted before the assembly completed');
      for (const f of fixtures) assert.deepEqual(encryptionKeyIdsIn(f.history), [], `${f.file} holds encrypted payloads`);
    },
  },
  'scheduled-work': {
    covers: 'for every scheduled workflow, the audit check both intact and broken',
    minFixtures: 8,
    workflowId: /^(backup|restore-drill|overdue-reminders|daily-digest|cleanup|health-canary|audit-verify):capture-[0-9a-f]{6}$/,
    minEvents: 11,
    workflowTypes: [
      'auditVerifyWorkflow',
      'backupWorkflow',
      'cleanupWorkflow',
      'dailyDigestWorkflow',
      'healthCanaryWorkflow',
      'overdueRemindersWorkflow',
      'restoreDrillWorkflow',
    ],
    more(fixtures) {
      const audits = fixtures.filter((f) => workflowTypeOf(f) === 'auditVerifyWorkflow');
      const activities = (f: NamedFixture) =>
        f.history.events?.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []) ?? [];
      assert.ok(
        audits.some((f) => activities(f).join() === 'verifyAuditTrail'),
        'an audit check that found the chain intact and told no one',
      );
      assert.ok(
        audits.some((f) => activities(f).join() === 'verifyAuditTrail,deliverEmails'),
        'an audit check that found a broken link and alerted the admins',
      );
    },
  },
  webhooks: {
    covers: 'for webhook delivery runs (a retry, a dead letter, disabled by an admin), one event per activity and in batches',
    minFixtures: 2,
    workflowId: /^webhook-delivery:[0-9a-f-]{36}$/,
    minEvents: 11,
    workflowTypes: ['webhookDeliveryWorkflow'],
    more(fixtures) {
      const activities = (f: NamedFixture) =>
        f.history.events?.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []) ?? [];
      assert.ok(
        fixtures.some((f) => activities(f).includes('nextWebhookBatch') && !activities(f).includes('deliverWebhookBatch')),
        'a run from before the batch path: one deliverWebhookEvent activity per event',
      );
      assert.ok(
        fixtures.some((f) => ['deliverWebhookBatch', 'deliverWebhookEvent', 'deadLetterWebhookEvent'].every((a) => activities(f).includes(a))),
        'a run on the batch path that retried an event on its own and dead-lettered one',
      );
    },
  },
  notices: {
    covers: 'for an urgent notice escalated and acknowledged, and a normal one with a refused SMS',
    minFixtures: 2,
    workflowId: /^notice:[0-9a-f-]{36}$/,
    minEvents: 11,
    workflowTypes: ['noticeWorkflow'],
  },
  notifications: {
    covers: 'for the delivery of emails the API queued (a break-glass alert)',
    minFixtures: 1,
    workflowId: /^deliver-emails:break-glass:[0-9a-f-]{36}$/,
    minEvents: 11,
    workflowTypes: ['deliverEmailsWorkflow'],
  },
  training: {
    covers: 'for a campaign, its revision, and assignments signed (after a forged sign-off), cancelled, superseded and open',
    minFixtures: 6,
    workflowId: /^training(-campaign)?:([a-z0-9._-]+:)?[A-Z0-9-]+:v\d+$/,
    minEvents: 5,
    workflowTypes: ['trainingAssignmentWorkflow', 'trainingCampaignWorkflow'],
  },
  'soap-summary': {
    covers: 'for each way a summary run ends, stored decoded and free of clinical text',
    minFixtures: 6,
    workflowId: /^soap-summary:[0-9a-f-]{36}:[0-9a-f]{32}$/,
    minEvents: 16,
    workflowTypes: ['soapSummaryWorkflow'],
    more(fixtures) {
      const endings = new Set(fixtures.map(summaryEndingOf));
      for (const ending of ['approved', 'edited', 'superseded', 'failed']) assert.ok(endings.has(ending), `a run that ended ${ending}`);
      assert.ok(
        fixtures.some((f) => f.history.events?.some((e) => e.activityTaskCancelRequestedEventAttributes)),
        'a run superseded while a provider call was in flight',
      );
      // Stored decoded, so they replay under any key set; readable, so a reviewer can see they hold no PHI.
      for (const f of fixtures) {
        assert.deepEqual(encryptionKeyIdsIn(f.history), [], `${f.file} holds encrypted payloads`);
        const text = payloadTexts(f.history).join('\n').toLowerCase();
        assert.ok(text.includes(f.workflowId.toLowerCase()), `${f.file}: its payloads are readable`);
        for (const term of ['lisinopril', 'penicillin', 'aspirin', 'angina', 'hypertension', 'elm street']) {
          assert.ok(!text.includes(term), `${f.file} carries "${term}"`);
        }
      }
    },
  },
};
