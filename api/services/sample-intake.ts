import { randomUUID } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import type { AssigneeRef } from '../../common/assignees';
import type { Actor } from '../../common/roles';
import {
  ACCEPTED_STATES,
  DEFAULT_INTAKE_TIMERS,
  FINAL_SAMPLE_STATES,
  batchProgressQuery,
  sampleBatchWorkflowId,
  sampleStateQuery,
  type IntakeTimers,
  type SampleIntakeState,
} from '../../common/sample-intake';
import { workflowIds } from '../../common/ids';
import { materialOf } from '../../db/erp-sync';
import { findActiveUser } from '../../db/identity';
import { dismissHeldOrder, findHeldOrder, holdOrder, releaseHeldOrder } from '../../db/sample-held-orders';
import { markWebhookEventApplied, registerExternalSample } from '../../db/sample-webhooks';
import {
  activeUsersNamed,
  apiDuplicateOf,
  batchProgress,
  findSample,
  findSampleByExternal,
  OrderingProviderRefused,
  providerRefusal,
  registerBatch,
  registerSamples,
  sampleDetails,
  setOrderingProvider,
  sampleTypes,
  sourceOf,
  testCodes,
  type NewSample,
  type SampleRow,
} from '../../db/sample-intake';
import { listSignaturesFor } from '../../db/signatures';
import type { sampleBatchWorkflow } from '../../workflows';
import type { ApiDeps } from '../deps';
import { liveOrRecorded } from '../live-or-recorded';
import { problems } from '../problem';
import type { BatchBody, InspectBody, OrderingProviderBody, RegisterBody, ResolveHeldOrderBody, WebhookBody } from '../schemas/sample-intake';
import { compareIdentifiers, deliverSampleEvent, intakeInput, startIntakeRun, webhookEvent } from '../temporal/sample-intake';
import { checkTimers, type TimerRule } from './timer-bounds';

type Deps = Pick<ApiDeps, 'db' | 'temporal' | 'config'>;

const isUniqueViolation = (err: unknown) => (err as { code?: string }).code === '23505';
const BATCH_CONCURRENCY = 50;
const BATCH_PAGE_SIZE = 500;

/** Checks sample types and test codes against the catalogue; the first unknown one is a 422 naming its field. */
export async function checkCodes(db: ApiDeps['db'], items: { sampleType: string; tests: string[] }[], prefix: (i: number) => string) {
  const [types, tests] = await Promise.all([sampleTypes(db), testCodes(db)]);
  items.forEach((item, i) => {
    const type = types.get(item.sampleType);
    if (!type) {
      throw problems.unprocessable('unknown-sample-type', `unknown sample type "${item.sampleType}"`, {
        errors: [{ field: `${prefix(i)}sampleType`, detail: 'unknown sample type' }],
      });
    }
    item.tests.forEach((code, j) => {
      const test = tests.get(code);
      if (!test || test.sample_type !== item.sampleType) {
        const detail = test ? `test ${code} runs on ${test.sample_type}, not ${item.sampleType}` : `unknown test code "${code}"`;
        throw problems.unprocessable('unknown-test-code', detail, { errors: [{ field: `${prefix(i)}tests.${j}`, detail }] });
      }
    });
  });
  return types;
}

/** A sample by accession (aliquots are reached through their parent), or 404. */
export async function loadSample(db: ApiDeps['db'], accession: string): Promise<SampleRow> {
  const row = await findSample(db, accession);
  if (!row || row.parent_id) throw problems.notFound(`sample ${accession}`);
  return row;
}

/** A clinician acts only on samples they submitted (403); lab roles and admins act on any sample. */
export function requireSampleAccess(row: SampleRow, actor: Actor): void {
  if (actor.roles.some((role) => role === 'admin' || role === 'lab_technician' || role === 'lab_director')) return;
  if (row.submitter_id !== null && row.submitter_id === actor.userId) return;
  throw problems.forbidden(`${row.accession} was submitted by someone else; a clinician acts only on samples they submitted`);
}

/** The run a person's action goes to; a sample whose run has ended is refused (409). */
export function runOf(deps: Deps, row: SampleRow): WorkflowHandle {
  if (FINAL_SAMPLE_STATES.includes(row.state) || !row.workflow_id) {
    throw problems.conflict('run-finished', `${row.accession} is ${row.state}; nothing more can be done`);
  }
  return deps.temporal.workflow.getHandle(row.workflow_id);
}

/**
 * A sample as the API shows it: the run's live state while it runs (or the state an Update just answered), else the
 * projection; never a mix of the two. Aliquots, storage, routes and signatures come from Postgres either way.
 */
export async function sampleView(deps: Deps, row: SampleRow, answered?: SampleIntakeState) {
  const shown = (live: SampleIntakeState | null) => ({
    accession: row.accession,
    workflowId: row.workflow_id,
    source: row.source,
    externalId: row.external_id,
    barcode: row.barcode,
    sampleType: row.sample_type,
    priority: row.priority,
    state: live ? live.state : row.state,
    stage: live ? live.stage : row.stage,
    requestedTests: live ? live.requestedTests : row.requested_tests,
    rejectedTests: live ? live.rejectedTests : row.rejected_tests,
    collectedAt: live ? live.collectedAt : row.collected_at,
    receivedAt: live ? live.receivedAt : row.received_at,
    receivedBy: live ? live.receivedBy : row.received_by,
    receivedLocation: live ? live.receivedLocation : row.received_location,
    dueAt: live ? live.dueAt : row.due_at,
    overdue: row.overdue,
    inspection: live ? live.inspection : row.inspection,
    decision: live ? live.decision : null,
    deviationComment: row.deviation_comment,
    rejection: row.rejection_code ? { code: row.rejection_code, condition: row.rejection_condition, disposition: row.disposition } : null,
    cancelReason: live ? live.cancelReason : row.cancel_reason,
    live: live !== null,
    process: live,
  });
  const run = row.workflow_id && !FINAL_SAMPLE_STATES.includes(row.state) ? deps.temporal.workflow.getHandle(row.workflow_id) : null;
  const recorded = shown(null);
  const view = answered
    ? shown(answered)
    : ((await liveOrRecorded({ run, query: sampleStateQuery, fromLive: shown, recorded }))?.view ?? recorded);
  const [details, signatures, provider] = await Promise.all([
    sampleDetails(deps.db, row.id),
    listSignaturesFor(deps.db, 'sample', row.accession),
    row.ordering_provider_id ? deps.db('users').where({ id: row.ordering_provider_id }).first('username', 'printed_name') : null,
  ]);
  const orderingProvider = provider ? { username: provider.username as string, printedName: provider.printed_name as string } : null;
  return { ...view, orderingProvider, ...details, signatures };
}

/** The view after an Update: the state the run answered, with what Postgres holds now. */
export async function viewAfterUpdate(deps: Deps, accession: string, answered: SampleIntakeState) {
  return sampleView(deps, await loadSample(deps.db, accession), answered);
}

/** The lab sets a sample's waiting periods; a clinician's request takes the configured ones. */
const INTAKE_TIMER_RULE: TimerRule = {
  roles: ['lab_technician', 'lab_director'],
  ceilings: { ...DEFAULT_INTAKE_TIMERS },
  prefix: 'body.timers.',
  what: 'sample intake timers',
};

const refusalText = (username: string, refusal: 'unknown' | 'not_clinician') =>
  refusal === 'unknown' ? `no active user "${username}"` : `"${username}" is not a clinician`;
const refusalSlug = (refusal: 'unknown' | 'not_clinician') => (refusal === 'unknown' ? 'unknown-ordering-provider' : 'ordering-provider-not-clinician');

/** The ordering provider a requisition names: an active user with the clinician role, else 422 and nothing written. */
async function orderingProviderOf(db: Deps['db'], username: string | undefined) {
  const named = await namedProvider(db, username);
  if (named.unresolved) {
    const { refusal } = named.unresolved;
    throw problems.unprocessable(refusalSlug(refusal), refusalText(username!, refusal), {
      errors: [{ field: 'body.orderingProvider', detail: refusal === 'unknown' ? 'unknown user' : 'not a clinician' }],
    });
  }
  return named.provider;
}

/**
 * The ordering providers a batch names, looked up in one query: every sample naming one who is not an active
 * clinician is a 422 naming its field (at most 100 listed), before anything is written. Answers each sample's.
 */
async function batchProvidersOf(db: Deps['db'], samples: { orderingProvider?: string }[]): Promise<(string | null)[]> {
  const named = samples.map((s) => s.orderingProvider).filter((u): u is string => u !== undefined);
  const users = await activeUsersNamed(db, named);
  const refused = samples
    .map((s, i) => ({ i, username: s.orderingProvider, refusal: s.orderingProvider === undefined ? null : providerRefusal(users.get(s.orderingProvider)) }))
    .filter((r): r is { i: number; username: string; refusal: 'unknown' | 'not_clinician' } => r.refusal !== null);
  if (refused.length) {
    const first = refused[0];
    const detail = (r: (typeof refused)[number]) => refusalText(r.username, r.refusal);
    throw problems.unprocessable(
      refusalSlug(first.refusal),
      `${refused.length} sample(s) name an ordering provider who is not an active clinician; the first is sample ${first.i}: ${detail(first)}`,
      {
        errors: refused.slice(0, 100).map((r) => ({ field: `body.samples.${r.i}.orderingProvider`, detail: detail(r) })),
      },
    );
  }
  return samples.map((s) => (s.orderingProvider === undefined ? null : users.get(s.orderingProvider)!.id));
}

/**
 * Registers one sample and starts its run in the same transaction (if Temporal refuses, no sample is left without
 * its run). A tube already registered is a 409 naming its accession.
 */
export async function registerSample(deps: Deps, body: RegisterBody, actor: Actor): Promise<{ accession: string; workflowId: string }> {
  const { db, temporal, config } = deps;
  checkTimers(actor, body.timers, INTAKE_TIMER_RULE);
  const types = await checkCodes(db, [body], () => 'body.');
  if (body.collectedAt && Date.parse(body.collectedAt) > Date.now()) {
    throw problems.unprocessable('collection-in-future', 'the collection time is in the future', {
      errors: [{ field: 'body.collectedAt', detail: 'in the future' }],
    });
  }
  let submitter: AssigneeRef = { kind: 'user', userId: actor.userId, username: actor.username };
  if (body.submitter) {
    const user = await findActiveUser(db, body.submitter);
    if (!user) {
      throw problems.unprocessable('unknown-user', `no active user "${body.submitter}"`, {
        errors: [{ field: 'body.submitter', detail: 'unknown user' }],
      });
    }
    submitter = { kind: 'user', userId: user.id, username: user.username };
  }
  const provider = await orderingProviderOf(db, body.orderingProvider);
  const item: NewSample = { ...body, requestedTests: body.tests, orderingProviderId: provider?.id ?? null };
  try {
    return await db.transaction(async (trx) => {
      const [registered] = await registerSamples(trx, [item], {
        source: 'api',
        submitterId: submitter.kind === 'user' ? submitter.userId : null,
        actor: actor.username,
        actorId: actor.userId,
        workflowIdOf: workflowIds.sampleIntake,
      });
      const input = intakeInput(registered, types.get(registered.sample_type)!, submitter, body.timers);
      const handle = await startIntakeRun(temporal, config.taskQueue, input);
      return { accession: registered.accession, workflowId: handle.workflowId };
    });
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    const existing = await apiDuplicateOf(db, body);
    throw problems.conflict('duplicate-sample', `this tube is already registered as ${existing}`, { accession: existing });
  }
}

/** What the inspection saw, with the label's identifiers compared to the requisition's here (no PHI enters the run). */
export async function inspectionFindings(deps: Deps, row: SampleRow, body: InspectBody) {
  const material = row.source === 'erp' ? await materialOf(deps.db, row.id) : null;
  return { ...body, identifiers: compareIdentifiers(row, body.identifiers, material) };
}

/**
 * Registers a batch (specimens in hand carry their arrival), then starts the batch run, which reads its samples
 * from Postgres and starts one run per sample.
 */
export async function registerSampleBatch(deps: Deps, body: BatchBody, actor: Actor) {
  const { db, temporal, config } = deps;
  checkTimers(actor, body.timers, INTAKE_TIMER_RULE);
  await checkCodes(
    db,
    body.samples.map((s) => ({ sampleType: s.sampleType, tests: s.tests })),
    (i) => `body.samples.${i}.`,
  );
  const providers = await batchProvidersOf(db, body.samples);
  const now = Date.now();
  const receivedAt = new Date(now).toISOString();
  const items: NewSample[] = body.samples.map((sample, i) => {
    if (sample.collectedAt && Date.parse(sample.collectedAt) > now) {
      throw problems.unprocessable('collection-in-future', `sample ${i}: the collection time is in the future`, {
        errors: [{ field: `body.samples.${i}.collectedAt`, detail: 'in the future' }],
      });
    }
    const { orderingProvider: _named, ...fields } = sample;
    const item: NewSample = { ...fields, requestedTests: sample.tests, orderingProviderId: providers[i] };
    const arrival = sample.arrival;
    if (!arrival) return item;
    const requisition = {
      patient_name: item.patient?.name ?? null,
      patient_dob: item.patient?.dob ?? null,
      patient_sex: item.patient?.sex ?? null,
      patient_mrn: item.patient?.mrn ?? null,
    };
    const findings = {
      ...arrival.findings,
      temperatureC: arrival.temperatureC,
      identifiers: compareIdentifiers(requisition, arrival.findings.identifiers),
    };
    return {
      ...item,
      arrival: {
        autoAccept: body.autoAccept,
        receipt: { actor: null, by: actor.username, receivedAt, location: arrival.location, temperatureC: arrival.temperatureC },
        inspection: { actor: null, findings },
      },
    };
  });
  const batchId = randomUUID();
  const workflowId = sampleBatchWorkflowId(batchId);
  try {
    await registerBatch(db, { id: batchId, workflowId, items }, actor);
  } catch (err) {
    if (isUniqueViolation(err)) throw problems.conflict('duplicate-sample', 'a barcode or external ID in the batch is already registered');
    throw err;
  }
  const timers: IntakeTimers = { ...DEFAULT_INTAKE_TIMERS, ...body.timers };
  await temporal.workflow.start<typeof sampleBatchWorkflow>('sampleBatchWorkflow', {
    workflowId,
    taskQueue: config.taskQueue,
    args: [{ batchId, concurrency: BATCH_CONCURRENCY, pageSize: BATCH_PAGE_SIZE, timers }],
    workflowIdConflictPolicy: 'FAIL',
  });
  return { batchId, workflowId, size: items.length };
}

/** Batch progress: runs started (from the batch run while it runs) and samples by state (from Postgres). */
export async function sampleBatchProgress(deps: Deps, batchId: string) {
  const progress = await batchProgress(deps.db, batchId);
  if (!progress) throw problems.notFound(`batch ${batchId}`);
  const size = progress.batch.size as number;
  const run = await liveOrRecorded({
    run: deps.temporal.workflow.getHandle(progress.batch.workflow_id),
    query: batchProgressQuery,
    fromLive: (live) => ({ started: live.done ? size : live.started, runsStarted: live.done }),
    recorded: { started: null as number | null, runsStarted: false },
  });
  const accepted = [...ACCEPTED_STATES, 'completed'].reduce((n, state) => n + (progress.byState[state] ?? 0), 0);
  return {
    batchId,
    size,
    started: run?.view.started ?? null,
    runsStarted: run?.view.runsStarted ?? false,
    byState: progress.byState,
    accepted,
    createdAt: progress.batch.created_at,
  };
}

/**
 * Resolves a held order: dismissed with a reason, or released under the codes a person mapped it to (registered
 * and applied as the webhook would have). A concurrent resolution is a 409.
 */
export async function resolveHeldOrder(deps: Deps, id: string, body: ResolveHeldOrderBody, actor: Actor) {
  const { db, temporal, config } = deps;
  const held = await findHeldOrder(db, id);
  if (!held) throw problems.notFound(`held order ${id}`);
  if (held.state !== 'held') throw problems.conflict('held-order-resolved', `held order ${id} is already ${held.state}`);
  const resolvedMeanwhile = () => problems.conflict('held-order-resolved', `held order ${id} was resolved meanwhile`);

  if (body.action === 'dismiss') {
    if (!(await dismissHeldOrder(db, held, body.reason, actor))) throw resolvedMeanwhile();
    return { id: held.id, state: 'discarded' as const, accession: null };
  }

  const payload = held.payload as WebhookBody;
  const sampleType = body.sampleType ?? payload.sample.sampleType;
  if (!sampleType) {
    throw problems.unprocessable('sample-type-required', 'the held order names no sample type: give one', {
      errors: [{ field: 'body.sampleType', detail: 'required' }],
    });
  }
  const original = payload.sample.tests ?? [];
  const stray = Object.keys(body.tests).filter((code) => !original.includes(code));
  if (stray.length) {
    throw problems.unprocessable('unknown-mapping', `not a test code of this order: ${stray.join(', ')}`, {
      errors: stray.map((code) => ({ field: `body.tests.${code}`, detail: 'not in the held order' })),
    });
  }
  const tests = [...new Set(original.map((code) => body.tests[code] ?? code))];
  const types = await checkCodes(db, [{ sampleType, tests }], () => 'body.');
  // A provider given here must be an active clinician (422); one the order named who is not is noted, as the webhook does.
  const given = await orderingProviderOf(db, body.orderingProvider);
  const named = given ? { provider: given, unresolved: undefined } : await namedProvider(db, payload.sample.orderingProvider);
  const mapped: WebhookBody = {
    ...payload,
    sample: { ...payload.sample, sampleType, tests, ...(given && { orderingProvider: given.username }) },
  };
  const source = await sourceOf(db, held.source);
  const s = mapped.sample;
  const row = await releaseHeldOrder(
    db,
    held,
    {
      mapped,
      sample: {
        sampleType,
        priority: s.priority ?? 'routine',
        requestedTests: tests,
        externalId: s.externalId,
        barcode: s.barcode,
        patient: s.patient,
        collectedAt: s.collectedAt,
        orderingProviderId: named.provider?.id ?? null,
      },
      submitterId: source?.contact_user_id ?? null,
      mapping: { tests: body.tests, comment: body.comment ?? null },
      unresolvedProvider: named.unresolved,
      // The resolution's provider, else the order's own when it names an active clinician.
      givenProvider: named.provider ? { id: named.provider.id, username: named.provider.username } : null,
    },
    actor,
  ).catch((err: unknown) => {
    throw err instanceof OrderingProviderRefused ? providerRefusedProblem(`the sample with external ID ${s.externalId}`, err) : err;
  });
  if (!row) throw resolvedMeanwhile();
  // Applied as the webhook would have: the event goes to the sample's run (started if it does not exist yet).
  await deliverSampleEvent(db, temporal, config.taskQueue, row, types.get(row.sample_type)!, webhookEvent(held.source, mapped));
  const current = row.ordering_provider_id ? await db('users').where({ id: row.ordering_provider_id }).first('username') : null;
  return {
    id: held.id,
    state: 'resolved' as const,
    accession: row.accession,
    workflowId: row.workflow_id,
    // `kept_existing`: a later delivery registered the sample with another provider, who stays; the one given here was not applied.
    orderingProvider: { outcome: row.orderingProviderOutcome, current: current ? (current.username as string) : null },
  };
}

/**
 * The ordering provider an external order names: an active clinician is the sample's; one who is not does not hold
 * the order (the specimen's testing does not wait on it) but is noted for the lab to set the provider.
 */
async function namedProvider(db: ApiDeps['db'], username: string | undefined) {
  if (username === undefined) return { provider: null, unresolved: undefined };
  const user = (await activeUsersNamed(db, [username])).get(username);
  const refusal = providerRefusal(user);
  return refusal ? { provider: null, unresolved: { username, refusal } } : { provider: user!, unresolved: undefined };
}

/** Finds or registers the sample an event is about; null when it must be held for a person. */
async function sampleFor(db: ApiDeps['db'], source: string, contactId: string | null, body: WebhookBody): Promise<SampleRow | null> {
  const known = await findSampleByExternal(db, source, body.sample.externalId);
  if (known) return known;
  const s = body.sample;
  if (!s.sampleType) {
    await holdOrder(db, source, body, `no sample with external ID ${s.externalId} and no sample type to register one`);
    return null;
  }
  const [types, tests] = await Promise.all([sampleTypes(db), testCodes(db)]);
  const unknown = [
    ...(types.has(s.sampleType) ? [] : [`sample type ${s.sampleType}`]),
    ...(s.tests ?? []).filter((t) => tests.get(t)?.sample_type !== s.sampleType).map((t) => `test ${t}`),
  ];
  if (unknown.length) {
    await holdOrder(db, source, body, `unknown ${unknown.join(', ')}`);
    return null;
  }
  const named = await namedProvider(db, s.orderingProvider);
  return registerExternalSample(
    db,
    { name: source, contactUserId: contactId },
    {
      sampleType: s.sampleType,
      priority: s.priority ?? 'routine',
      requestedTests: s.tests ?? [],
      externalId: s.externalId,
      barcode: s.barcode,
      patient: s.patient,
      collectedAt: s.collectedAt,
      orderingProviderId: named.provider?.id ?? null,
    },
    named.unresolved,
  );
}

/**
 * Applies a webhook event: finds or registers its sample (or holds the order for a person), tells the sample's run,
 * and marks the delivery applied. A failure leaves it unapplied, and the sender's retry applies it.
 */
export async function applyWebhookEvent(deps: Deps, source: string, contactId: string | null, body: WebhookBody): Promise<void> {
  const { db, temporal, config } = deps;
  const row = await sampleFor(db, source, contactId, body);
  if (row) {
    const type = (await sampleTypes(db)).get(row.sample_type)!;
    await deliverSampleEvent(db, temporal, config.taskQueue, row, type, webhookEvent(source, body));
  }
  await markWebhookEventApplied(db, source, body.eventId, row?.accession ?? null);
}

/**
 * Sets or corrects a registered sample's ordering provider (lab roles): 404 for an unknown sample, 422 for one who is
 * not an active clinician, 409 once a critical call of the sample has been confirmed; nothing written on refusal. Open
 * critical calls of the sample take the new provider (their runs go on as they were: a call escalated for want of a
 * provider stays escalated, and attempts may now be logged to the provider).
 */
export async function setSampleOrderingProvider(deps: Deps, accession: string, body: OrderingProviderBody, actor: Actor) {
  const row = await loadSample(deps.db, accession);
  const provider = (await orderingProviderOf(deps.db, body.orderingProvider))!;
  try {
    const set = await setOrderingProvider(deps.db, row, provider, body.reason, actor);
    return {
      accession: row.accession,
      orderingProvider: { username: provider.username, printedName: provider.printed_name },
      previous: set.previous ? { username: set.previous.username } : null,
      changed: set.changed,
      criticalCalls: set.criticalCalls,
    };
  } catch (err) {
    throw err instanceof OrderingProviderRefused ? providerRefusedProblem(row.accession, err) : err;
  }
}

/** The one answer to a provider change refused because a critical call of the sample was confirmed: 409, nothing written. */
function providerRefusedProblem(sample: string, err: OrderingProviderRefused) {
  return problems.conflict(
    'critical-call-confirmed',
    `a critical value of ${sample} was already called and confirmed (${err.confirmedCall}); its ordering provider is no longer changed`,
  );
}
