import type { Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { AssigneeRef } from '../../common/assignees';
import {
  DEFAULT_INTAKE_TIMERS,
  sampleEventSignal,
  sampleIntakeStartOptions,
  type IntakeTimers,
  type SampleEvent,
  type SampleIntakeInput,
} from '../../common/sample-intake';
import type { Db } from '../../db/knex';
import { criteriaOf, submitterOf, type RegisteredSample, type SampleRow, type SampleTypeRow } from '../../db/sample-intake';
import { signalledEventOf } from '../../db/sample-webhooks';
import type { WebhookBody } from '../schemas/sample-intake';
import type { sampleIntakeWorkflow } from '../../workflows';

/** A run's input from its registered row: IDs, the type's written criteria and the timers; no patient data. */
export function intakeInput(
  row: Pick<
    RegisteredSample,
    'id' | 'accession' | 'sample_type' | 'priority' | 'requested_tests' | 'has_order' | 'collected_at' | 'registered_at'
  >,
  type: SampleTypeRow,
  submitter: AssigneeRef | null,
  timers: Partial<IntakeTimers> = {},
): SampleIntakeInput {
  return {
    sampleId: row.id,
    accession: row.accession,
    sampleType: row.sample_type,
    priority: row.priority,
    requestedTests: row.requested_tests,
    hasOrder: row.has_order,
    collectedAt: row.collected_at ? new Date(row.collected_at).toISOString() : null,
    registeredAt: new Date(row.registered_at).toISOString(),
    criteria: criteriaOf(type),
    timers: { ...DEFAULT_INTAKE_TIMERS, ...timers },
    submitter,
  };
}

const startOptions = (input: SampleIntakeInput, taskQueue: string) => ({
  ...sampleIntakeStartOptions(input.accession),
  taskQueue,
  args: [input] as [SampleIntakeInput],
  workflowIdConflictPolicy: 'FAIL' as const,
});

export function startIntakeRun(client: Client, taskQueue: string, input: SampleIntakeInput) {
  return client.workflow.start<typeof sampleIntakeWorkflow>('sampleIntakeWorkflow', startOptions(input, taskQueue));
}

/** A machine event for a sample whose run may not exist yet (or any more: a finished run is not restarted). */
export function signalIntakeRun(client: Client, taskQueue: string, input: SampleIntakeInput, event: SampleEvent) {
  return client.workflow.signalWithStart<typeof sampleIntakeWorkflow, [SampleEvent]>('sampleIntakeWorkflow', {
    ...startOptions(input, taskQueue),
    workflowIdConflictPolicy: 'USE_EXISTING',
    signal: sampleEventSignal,
    signalArgs: [event],
  });
}

const WEBHOOK_EVENT_TYPES: Record<WebhookBody['type'], SampleEvent['type']> = {
  order: 'order',
  'sample.shipped': 'shipped',
  'sample.received': 'received',
  'result.ready': 'result_ready',
};

/**
 * The sample event a webhook delivery stands for; a held order released later becomes the same event. It names
 * the delivery, whose row is the event's proof.
 */
export function webhookEvent(source: string, body: WebhookBody): SampleEvent & { delivery: { source: string; eventId: string } } {
  return {
    eventId: `${source}:${body.eventId}`,
    source,
    type: WEBHOOK_EVENT_TYPES[body.type],
    at: body.type === 'sample.received' ? new Date().toISOString() : (body.occurredAt ?? new Date().toISOString()),
    location: body.location,
    temperatureC: body.temperatureC,
    collectedAt: body.sample.collectedAt,
    tests: body.type === 'result.ready' ? body.tests : body.sample.tests,
    delivery: { source, eventId: body.eventId },
  };
}

/**
 * Tells the sample's run about an event, starting the run when it does not exist; a run that has ended is left be.
 * The event is first written on its delivery's row with the run it goes to (once: a repeated attempt signals the
 * event written first), which is what the run's recording step checks.
 */
export async function deliverSampleEvent(
  db: Db,
  client: Client,
  taskQueue: string,
  row: SampleRow,
  type: SampleTypeRow,
  event: SampleEvent & { delivery: { source: string; eventId: string } },
) {
  const submitter = row.submitter_id ? await submitterOf(db, row.submitter_id) : null;
  const input = intakeInput(row, type, submitter);
  const signalled = await signalledEventOf(db, sampleIntakeStartOptions(row.accession).workflowId, event);
  try {
    await signalIntakeRun(client, taskQueue, input, signalled);
  } catch (err) {
    // A late event for a run that has finished: it is recorded by the caller; there is no run left to tell.
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
}

const norm = (value: string) => value.trim().toLowerCase().replace(/\s+/g, ' ');

/** What identifies a retained sample of received goods: its receipt line's item code, lot and receipt. */
export interface MaterialIdentifiers {
  item: string;
  lot: string | null;
  receipt: string;
}

/**
 * Compares the identifiers on the specimen's label with the requisition's (two are required, CLIA 493.1242(a)(1)).
 * Done here so that patient identifiers never enter a run: the run learns only how many and whether they match.
 * A sample of received goods (incoming inspection) is identified by its material instead of a patient.
 */
export function compareIdentifiers(
  row: Pick<SampleRow, 'patient_name' | 'patient_dob' | 'patient_mrn'>,
  label: { type: 'name' | 'dob' | 'mrn' | 'item' | 'lot' | 'receipt'; value: string }[],
  material: MaterialIdentifiers | null = null,
) {
  const requisition: Record<string, string | null> = {
    name: row.patient_name,
    dob: row.patient_dob,
    mrn: row.patient_mrn,
    item: material?.item ?? null,
    lot: material?.lot ?? null,
    receipt: material?.receipt ?? null,
  };
  const present = new Map(label.filter((i) => i.value.trim()).map((i) => [i.type, i.value]));
  const matchRequisition = [...present].every(([type, value]) => requisition[type] !== null && norm(requisition[type]!) === norm(value));
  return { count: present.size, matchRequisition };
}
