import { randomBytes } from 'node:crypto';
import {
  sampleEventSignal,
  type AcceptanceCriteria,
  type InspectionFindings,
  type IntakeTimers,
  type SampleEvent,
  type SampleIntakeInput,
} from '../../common/sample-intake';
import { signalledEventOf } from '../../db/sample-webhooks';
import type { Platform } from '../helpers/platform';
import type { TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';

export const PATIENT = { name: 'Ada Lovelace', dob: '1915-12-10', mrn: 'MRN-0042' };
export const LABEL = [
  { type: 'name', value: 'ada  lovelace' },
  { type: 'mrn', value: 'MRN-0042' },
];
export const GOOD_SERUM = {
  identifiers: LABEL,
  container: 'SST',
  preservative: 'clot_activator',
  volumeMl: 3,
  temperatureC: 4,
  hemolyzed: false,
  clotted: false,
};

/** Serum's written acceptance criteria, as a run receives them. */
export const SERUM: AcceptanceCriteria = {
  containers: ['SST'],
  preservatives: ['clot_activator'],
  minVolumeMl: 1,
  temperatureClasses: ['room', 'refrigerated'],
  rejectHemolyzed: true,
  rejectClotted: true,
  stability: { room: '8h', refrigerated: '7d' },
};
/** What a run is told of a specimen that passes every criterion (identifiers already compared by the API). */
export const GOOD: InspectionFindings = {
  identifiers: { count: 2, matchRequisition: true },
  container: 'SST',
  preservative: 'clot_activator',
  volumeMl: 3,
  temperatureC: 4,
  hemolyzed: false,
  clotted: false,
};
/** Shaped like a grant ID; only the recording activity (stubbed in workflow tests) can tell it is not one. */
export const WELL_FORMED_GRANT = 'g'.repeat(43);

/** A serum sample's run input with an order for CMP and TSH, collected an hour before `registeredAt`. */
export function sampleInput(accession: string, timers: IntakeTimers, over: Partial<SampleIntakeInput> = {}): SampleIntakeInput {
  const registeredAt = over.registeredAt ?? new Date().toISOString();
  return {
    sampleId: `id-${accession}`,
    accession,
    sampleType: 'SERUM',
    priority: 'routine',
    requestedTests: ['CMP', 'TSH'],
    hasOrder: true,
    collectedAt: new Date(Date.parse(registeredAt) - 3_600_000).toISOString(),
    registeredAt,
    criteria: SERUM,
    timers,
    submitter: null,
    ...over,
  };
}

export const hoursAgo = (h: number) => new Date(Date.now() - h * 3_600_000).toISOString();
export const tag = () => randomBytes(4).toString('hex');

export async function register(p: Platform, user: TestUser, body: Record<string, unknown> = {}) {
  const res = await p.api('POST', '/api/v1/samples', {
    key: user.apiKey,
    body: { sampleType: 'SERUM', tests: ['CMP', 'TSH'], patient: PATIENT, collectedAt: hoursAgo(1), barcode: `BC-${tag()}`, ...body },
  });
  if (res.status !== 202) throw new Error(`register answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body as { accession: string; workflowId: string };
}

export const act = (p: Platform, user: TestUser, accession: string, action: string, body?: unknown) =>
  p.api('POST', `/api/v1/samples/${accession}/${action}`, { key: user.apiKey, body });

export async function mustAct(p: Platform, user: TestUser, accession: string, action: string, body?: unknown) {
  const res = await act(p, user, accession, action, body);
  if (res.status !== 200) throw new Error(`${action} answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

export const getSample = async (p: Platform, user: TestUser, accession: string) =>
  (await p.api('GET', `/api/v1/samples/${accession}`, { key: user.apiKey })).body;

export const auditActions = async (accession: string) =>
  (await testEnv().db('audit_events').where({ entity_type: 'sample', entity_id: accession }).orderBy('seq').pluck('action')) as string[];

export const waitForAudit = (accession: string, action: string, timeoutMs = 20_000) =>
  waitFor(async () => (await auditActions(accession)).includes(action), `${accession} ${action}`, timeoutMs);

export const waitForRow = (accession: string, state: string, timeoutMs = 20_000) =>
  waitFor(
    async () => (await testEnv().db('samples').where({ accession }).first('state'))?.state === state,
    `${accession} ${state}`,
    timeoutMs,
  );

/** Register, receive and inspect a serum sample that passes every criterion. */
export async function inspected(
  p: Platform,
  submitter: TestUser,
  tech: TestUser,
  extra: Record<string, unknown> = {},
  findings: Record<string, unknown> = {},
) {
  const { accession, workflowId } = await register(p, submitter, extra);
  await mustAct(p, tech, accession, 'receive', { location: 'Central receiving', temperatureC: 4 });
  const state = await mustAct(p, tech, accession, 'inspect', { ...GOOD_SERUM, ...findings });
  return { accession, workflowId, state };
}

/**
 * A machine event delivered as the webhook route delivers one: recorded as a delivery of its source, written on
 * the delivery's row with the run it goes to, then signalled (the row is the proof the run's recording step
 * checks). The same event ID to the same run is the same delivery, signalled again.
 */
export async function deliverEvent(workflowId: string, event: Omit<SampleEvent, 'delivery'>): Promise<void> {
  const { db, client } = testEnv();
  await db('sample_sources')
    .insert({ name: event.source, secret: `whsec_${tag()}` })
    .onConflict('name')
    .ignore();
  const delivery = { source: event.source, eventId: `${event.eventId}@${workflowId}` };
  await db('sample_webhook_events')
    .insert({ source: delivery.source, event_id: delivery.eventId, type: event.type, payload: JSON.stringify(event) })
    .onConflict(['source', 'event_id'])
    .ignore();
  const signalled = await signalledEventOf(db, workflowId, { ...event, delivery });
  await client.workflow.getHandle(workflowId).signal(sampleEventSignal, signalled);
}
