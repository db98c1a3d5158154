import {
  ActivityFailure,
  ApplicationFailure,
  ParentClosePolicy,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  patched,
  proxyActivities,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Activities } from '../activities';
import type { SampleRef, StepCustody, StepTask } from '../activities/sample-intake';
import { linkSourcesSignal } from '../common/capa';
import { durationMs } from '../common/durations';
import { FailureType, refuse } from '../common/failures';
import { workflowIds } from '../common/ids';
import type { Actor, Role } from '../common/roles';
import {
  ACCEPTED_STATES,
  FINAL_SAMPLE_STATES,
  acceptUpdate,
  acceptWithDeviationUpdate,
  aliquotAccession,
  aliquotUpdate,
  attachOrderUpdate,
  batchProgressQuery,
  cancelUpdate,
  evaluateInspection,
  inspectUpdate,
  receiveUpdate,
  reinstateUpdate,
  rejectUpdate,
  routeUpdate,
  sampleEventSignal,
  sampleStateQuery,
  stabilityDeadline,
  storeUpdate,
  temperatureClass,
  type InspectArgs,
  type ReceiptArgs,
  type SampleBatchInput,
  type SampleEvent,
  type SampleIntakeInput,
  type SampleIntakeState,
  type SampleState,
  type TimerKind,
} from '../common/sample-intake';
import { Assignees, DueAt, EntityId, EntityType, Stage } from '../common/search-attributes';
import type { capaWorkflow } from './capa';

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '15s',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '1m',
    nonRetryableErrorTypes: [FailureType.NotFound, FailureType.PositionTaken, FailureType.InvalidInput],
  },
});
const mail = proxyActivities<Activities>({
  startToCloseTimeout: '45s',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '15m' },
});

const iso = (ms: number) => new Date(ms).toISOString();
const LAB_ROLES: Role[] = ['lab_technician', 'lab_director'];
const MAX_EVENT_IDS = 200;

/**
 * One specimen from registration to its end: receipt, inspection against its type's written criteria, acceptance
 * (or acceptance with a signed deviation, or rejection), aliquots, storage and routing, with a custody event for
 * every handoff and timers for transit, stability, holds and STAT turnaround.
 */
export async function sampleIntakeWorkflow(input: SampleIntakeInput): Promise<SampleIntakeState> {
  const { workflowId } = workflowInfo();
  const ref: SampleRef = { workflowId, sampleId: input.sampleId, accession: input.accession, submitter: input.submitter };
  const s: SampleIntakeState = input.resume ?? {
    workflowId,
    accession: input.accession,
    sampleType: input.sampleType,
    priority: input.priority,
    state: 'expected',
    cancelledFrom: null,
    cancelReason: null,
    cancelledAt: null,
    hasOrder: input.hasOrder,
    requestedTests: input.requestedTests,
    rejectedTests: [],
    collectedAt: input.collectedAt,
    registeredAt: input.registeredAt,
    shippedAt: null,
    receivedAt: null,
    receivedBy: null,
    receivedLocation: null,
    temperatureClass: null,
    inspection: null,
    decision: null,
    partialRejections: [],
    pieces: [{ accession: input.accession, parent: null, volumeMl: null, state: 'active' }],
    storage: [],
    routes: [],
    results: [],
    timersFired: [],
    dueAt: null,
    stage: 'expected',
    appliedEvents: [],
  };
  let changes = 0;
  const deliveries: Promise<unknown>[] = [];
  const background: Promise<unknown>[] = [];
  const deliver = (outboxIds: string[]) => {
    if (outboxIds.length) deliveries.push(mail.deliverEmails(outboxIds));
  };
  // Steps are written in the order they were accepted, so the projection ends where the run is.
  let writes: Promise<unknown> = Promise.resolve();
  function persist<T>(write: () => Promise<T>): Promise<T> {
    const next = writes.then(write, write);
    writes = next.catch(() => undefined);
    return next;
  }

  const isFinal = () => FINAL_SAMPLE_STATES.includes(s.state);
  const acceptedTests = () => s.requestedTests.filter((t) => !s.rejectedTests.includes(t));
  const isAccepted = () => ACCEPTED_STATES.includes(s.state);

  /** Who must act next, for the inbox and the Assignees search attribute. */
  function waitingOn(): string[] {
    if (s.state === 'received') return ['role:lab_technician'];
    if (s.state === 'inspected') return !s.hasOrder || s.inspection?.passed ? ['role:lab_technician'] : ['role:lab_director'];
    if (isAccepted() && s.state !== 'routed') return ['role:lab_technician'];
    return [];
  }

  /** The timers that apply now, each with its deadline; a fired timer does not fire again. */
  function timers(): { kind: TimerKind; at: number }[] {
    const t: { kind: TimerKind; at: number }[] = [];
    const add = (kind: TimerKind, at: number | null) => {
      if (at !== null && !s.timersFired.includes(kind)) t.push({ kind, at });
    };
    if (s.state === 'expected' && s.hasOrder) add('specimen_hold', Date.parse(s.registeredAt) + durationMs(input.timers.specimenHold));
    if (s.state === 'in_transit' && s.shippedAt) add('in_transit_overdue', Date.parse(s.shippedAt) + durationMs(input.timers.inTransitDue));
    if (['received', 'inspected'].includes(s.state)) {
      if (!s.hasOrder) add('order_hold', Date.parse(s.receivedAt!) + durationMs(input.timers.orderHold));
      if (s.collectedAt) add('stability_expired', stabilityDeadline(input.criteria, s.collectedAt, s.temperatureClass ?? 'room'));
    }
    const resulted = acceptedTests().every((test) => s.results.includes(test));
    if (s.priority === 'stat' && s.receivedAt && s.state !== 'cancelled' && !resulted) {
      add('stat_overdue', Date.parse(s.receivedAt) + durationMs(input.timers.statTurnaround));
    }
    return t.sort((a, b) => a.at - b.at);
  }

  function publish(): void {
    s.stage = s.state === 'inspected' && !s.hasOrder ? 'held_without_order' : s.state;
    const next = timers()[0];
    s.dueAt = next ? iso(next.at) : null;
    changes += 1;
    const assignees = waitingOn();
    upsertSearchAttributes([
      { key: EntityType, value: 'sample' },
      { key: EntityId, value: input.accession },
      { key: Stage, value: s.stage },
      { key: Assignees, value: assignees.length ? assignees : null },
      { key: DueAt, value: s.dueAt ? new Date(s.dueAt) : null },
    ]);
  }

  function nextTask(): StepTask | null {
    const [who] = waitingOn();
    if (!who) return null;
    const assignee = { kind: 'role', role: who.slice('role:'.length) as Role } as const;
    const what =
      s.state === 'received'
        ? 'Inspect'
        : s.state === 'inspected'
          ? s.hasOrder
            ? s.inspection?.passed
              ? 'Accept'
              : 'Decide on (deviation or rejection)'
            : 'Attach an order to'
          : 'Aliquot, store and route';
    return { key: s.stage, kind: `sample.${s.stage}`, title: `${what} specimen ${input.accession}`, assignee, dueAt: s.dueAt };
  }

  /** Persists the current state as one step: projection, custody, inbox and audit in one activity. */
  function step(
    action: string,
    extra: {
      actor?: Actor | null;
      by?: string;
      task?: StepTask | null;
      set?: Record<string, unknown>;
      custody?: StepCustody;
      details?: Record<string, unknown>;
      signature?: DeviationSignature;
    },
  ) {
    publish();
    const { signature, ...rest } = extra;
    const snapshot = { state: s.state, stage: s.stage, dueAt: s.dueAt, task: nextTask() };
    return persist(() => acts.recordSampleStep({ ref, action, ...snapshot, ...rest, signature }));
  }
  type DeviationSignature = Parameters<typeof acts.recordSampleStep>[0]['signature'];

  // ----- validators -----
  function requireState(...allowed: SampleState[]): void {
    if (allowed.includes(s.state)) return;
    if (isFinal()) refuse(FailureType.RunFinished, `${input.accession} is ${s.state}; nothing more can be done`);
    refuse(FailureType.WrongStage, `${input.accession} is ${s.state}, not ${allowed.join(' or ')}`);
  }
  function requireRole(actor: Actor | null, roles: Role[]): void {
    if (!actor) return;
    if (!roles.some((r) => actor.roles.includes(r)) && !actor.roles.includes('admin'))
      refuse(FailureType.Forbidden, `this needs one of: ${roles.join(', ')}`);
  }
  function requireText(value: string | undefined, what: string): void {
    if (!value?.trim()) refuse(FailureType.InvalidInput, `${what} is required`);
  }
  function validateReceipt(a: ReceiptArgs): void {
    requireState('expected', 'in_transit');
    requireRole(a.actor, LAB_ROLES);
    const collected = a.collectedAt ?? s.collectedAt;
    if (collected && Date.parse(collected) > Date.parse(a.receivedAt)) {
      refuse(FailureType.InvalidInput, `the collection time ${collected} is after the receipt time ${a.receivedAt}`);
    }
  }
  function validateInspection(a: InspectArgs): void {
    requireState('received', 'inspected');
    requireRole(a.actor, LAB_ROLES);
  }

  // ----- applying steps (shared by updates, machine events and batch arrival) -----
  async function applyReceipt(a: ReceiptArgs) {
    s.state = 'received';
    s.receivedAt = a.receivedAt;
    s.receivedBy = a.actor?.username ?? a.by;
    s.receivedLocation = a.location;
    if (a.collectedAt) s.collectedAt = a.collectedAt;
    if (a.temperatureC !== undefined) s.temperatureClass = temperatureClass(a.temperatureC);
    await step('sample.received', {
      actor: a.actor,
      by: a.by,
      set: { received_at: a.receivedAt, received_by: s.receivedBy, received_location: a.location, collected_at: s.collectedAt },
      custody: {
        event: 'received',
        from: s.shippedAt ? 'courier' : 'submitter',
        to: a.location,
        condition: a.condition ?? null,
        details: { temperatureC: a.temperatureC ?? null },
      },
      details: { location: a.location, receivedAt: a.receivedAt, temperatureC: a.temperatureC ?? null },
    });
  }
  async function applyInspection(a: InspectArgs) {
    const { checks, passed } = evaluateInspection(input.criteria, a.findings, s.collectedAt, s.receivedAt!);
    s.state = 'inspected';
    s.temperatureClass = temperatureClass(a.findings.temperatureC) ?? s.temperatureClass;
    s.inspection = { by: a.actor?.username ?? 'system:batch-intake', at: iso(Date.now()), contentHash: a.contentHash, checks, passed };
    await step('sample.inspected', {
      actor: a.actor,
      by: 'system:batch-intake',
      set: { inspection: JSON.stringify(s.inspection), volume_ml: a.findings.volumeMl },
      details: { passed, failed: checks.filter((c) => !c.ok).map((c) => ({ criterion: c.criterion, code: c.code, detail: c.detail })) },
    });
  }
  async function applyAcceptance(actor: Actor | null, by: string) {
    s.state = 'accepted';
    s.decision = { kind: 'accepted', by: actor?.username ?? by, at: iso(Date.now()) };
    await step('sample.accepted', { actor, by, custody: { event: 'accessioned', from: s.receivedLocation, to: 'accessioning bench' } });
  }
  async function applyEvent(e: SampleEvent) {
    const by = `system:${e.source}`;
    if (e.type === 'shipped' && s.state === 'expected') {
      s.state = 'in_transit';
      s.shippedAt = e.at;
      if (e.collectedAt) s.collectedAt = e.collectedAt;
      await step('sample.shipped', {
        by,
        set: { collected_at: s.collectedAt },
        custody: { event: 'shipped', from: e.location ?? 'submitter', to: 'courier', details: { eventId: e.eventId } },
        details: { eventId: e.eventId },
      });
    } else if (e.type === 'received' && ['expected', 'in_transit'].includes(s.state)) {
      const collected = e.collectedAt ?? s.collectedAt;
      if (collected && Date.parse(collected) > Date.parse(e.at)) return;
      await applyReceipt({
        actor: null,
        by,
        receivedAt: e.at,
        location: e.location ?? e.source,
        temperatureC: e.temperatureC,
        collectedAt: e.collectedAt,
      });
    } else if (e.type === 'order' && e.tests?.length && !s.hasOrder) {
      s.hasOrder = true;
      s.requestedTests = e.tests;
      await step('sample.order_attached', {
        by,
        set: { has_order: true, requested_tests: e.tests },
        details: { tests: e.tests, eventId: e.eventId },
      });
    } else if (e.type === 'result_ready' && e.tests?.length) {
      const fresh = e.tests.filter((t) => !s.results.includes(t));
      s.results.push(...fresh);
      changes += 1;
      await persist(() => acts.recordResults({ ref, tests: e.tests!, by, eventId: e.eventId }));
    }
  }

  setHandler(sampleStateQuery, () => s);

  setHandler(sampleEventSignal, (e) => {
    if (s.appliedEvents.includes(e.eventId)) return;
    s.appliedEvents.push(e.eventId);
    if (s.appliedEvents.length > MAX_EVENT_IDS) s.appliedEvents.shift();
    background.push(applyEvent(e));
  });

  setHandler(
    receiveUpdate,
    async (a) => {
      await applyReceipt(a);
      return s;
    },
    { validator: validateReceipt },
  );

  setHandler(
    inspectUpdate,
    async (a) => {
      await applyInspection(a);
      return s;
    },
    { validator: validateInspection },
  );

  setHandler(
    acceptUpdate,
    async ({ actor }) => {
      await applyAcceptance(actor, actor.username);
      return s;
    },
    {
      validator: ({ actor }) => {
        requireState('inspected');
        requireRole(actor, LAB_ROLES);
        if (!s.hasOrder) refuse(FailureType.WrongStage, `${input.accession} has no order yet; attach one first`);
        if (!s.inspection?.passed) {
          const failed = s.inspection!.checks.filter((c) => !c.ok).map((c) => c.criterion);
          refuse(
            FailureType.InvalidInput,
            `the specimen fails ${failed.join(', ')}: reject it, or the lab director accepts it with a deviation`,
          );
        }
      },
    },
  );

  setHandler(
    acceptWithDeviationUpdate,
    async ({ actor, comment, signature }) => {
      s.state = 'accepted_with_deviation';
      s.decision = { kind: 'accepted_with_deviation', by: actor.username, at: signature.signedAt, comment, signedBy: actor.printedName };
      await step('sample.accepted_with_deviation', {
        actor,
        set: { deviation_comment: comment },
        custody: { event: 'accessioned', from: s.receivedLocation, to: 'accessioning bench', condition: 'deviation' },
        details: { comment, failed: s.inspection!.checks.filter((c) => !c.ok).map((c) => c.criterion) },
        signature,
      });
      return s;
    },
    {
      validator: ({ actor, comment, signature }) => {
        requireState('inspected');
        requireRole(actor, ['lab_director']);
        if (!s.hasOrder) refuse(FailureType.WrongStage, `${input.accession} has no order yet; attach one first`);
        requireText(comment, 'a comment for the report');
        if (signature.contentHash !== s.inspection!.contentHash) {
          refuse(
            FailureType.StaleContentHash,
            `the inspection record changed since it was read: current hash is ${s.inspection!.contentHash}`,
          );
        }
      },
    },
  );

  setHandler(
    rejectUpdate,
    async ({ actor, code, condition: cond, disposition, comment, tests }) => {
      const rejecting = tests?.length ? tests : acceptedTests();
      const full = rejecting.length >= acceptedTests().length;
      const decision = {
        kind: 'rejected' as const,
        by: actor.username,
        at: iso(Date.now()),
        code,
        condition: cond,
        disposition,
        comment,
        tests: rejecting,
      };
      s.rejectedTests = [...s.rejectedTests, ...rejecting];
      if (full) {
        s.state = 'rejected';
        s.decision = decision;
        s.pieces.forEach((piece) => (piece.state = 'rejected'));
        s.storage = [];
        s.routes = s.routes.filter(() => false);
      } else {
        s.partialRejections.push(decision);
        s.routes = s.routes.filter((r) => !rejecting.includes(r.test));
      }
      publish();
      const { outboxIds, capaRequestId } = await persist(() =>
        acts.rejectSample({ ref, actor, code, condition: cond, disposition, comment, tests: rejecting, full, stage: s.stage }),
      );
      deliver(outboxIds);
      if (capaRequestId && patched('open-capa-from-rejection')) background.push(takeUpCapaRequest(capaRequestId, actor));
      return s;
    },
    {
      validator: ({ actor, tests, condition: cond }) => {
        requireState('received', 'inspected', ...ACCEPTED_STATES);
        requireRole(actor, LAB_ROLES);
        requireText(cond, 'the specimen condition');
        const unknown = (tests ?? []).filter((t: string) => !acceptedTests().includes(t));
        if (unknown.length) refuse(FailureType.InvalidInput, `not an open requested test of ${input.accession}: ${unknown.join(', ')}`);
      },
    },
  );

  setHandler(
    aliquotUpdate,
    async ({ actor, volumesMl }) => {
      const first = s.pieces.filter((p) => p.parent !== null).length + 1;
      const children = volumesMl.map((volumeMl, i) => ({ accession: aliquotAccession(input.accession, first + i), volumeMl }));
      s.pieces.push(
        ...children.map((c) => ({ accession: c.accession, parent: input.accession, volumeMl: c.volumeMl, state: 'active' as const })),
      );
      s.state = 'aliquoted';
      publish();
      await persist(() => acts.createAliquots({ ref, actor, children, stage: s.stage, dueAt: s.dueAt, task: nextTask()! }));
      return s;
    },
    {
      validator: ({ actor, volumesMl }) => {
        requireState(...ACCEPTED_STATES);
        requireRole(actor, LAB_ROLES);
        if (!volumesMl.length || volumesMl.some((v: number) => !(v > 0)))
          refuse(FailureType.InvalidInput, 'each aliquot needs a volume above 0 mL');
      },
    },
  );

  setHandler(
    storeUpdate,
    async ({ actor, piece, freezer, rack, box, position }) => {
      const before = { state: s.state, storage: [...s.storage] };
      s.storage = [...s.storage.filter((p) => p.piece !== piece), { piece, freezer, rack, box, position }];
      s.state = 'stored';
      publish();
      try {
        await persist(() =>
          acts.storeSample({ ref, actor, piece, freezer, rack, box, position, stage: s.stage, dueAt: s.dueAt, task: nextTask() }),
        );
      } catch (err) {
        // The position was taken by another sample meanwhile: the store did not happen.
        s.state = before.state;
        s.storage = before.storage;
        publish();
        if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure)
          refuse(err.cause.type as FailureType, err.cause.message);
        throw err;
      }
      return s;
    },
    {
      validator: ({ actor, piece, freezer, rack, box, position }) => {
        requireState(...ACCEPTED_STATES);
        requireRole(actor, LAB_ROLES);
        const p = s.pieces.find((x) => x.accession === piece);
        if (!p || p.state !== 'active') refuse(FailureType.InvalidInput, `${piece} is not an active piece of ${input.accession}`);
        const holder = s.storage.find((x) => x.freezer === freezer && x.rack === rack && x.box === box && x.position === position);
        if (holder) refuse(FailureType.PositionTaken, `position ${freezer}/${rack}/${box}/${position} already holds ${holder.piece}`);
      },
    },
  );

  setHandler(
    routeUpdate,
    async ({ actor, tests }) => {
      const open = acceptedTests().filter((t) => !s.routes.some((r) => r.test === t));
      const wanted = tests?.length ? tests : open.map((test) => ({ test, piece: input.accession }));
      const at = iso(Date.now());
      s.routes.push(...wanted.map((w) => ({ ...w, workQueue: '', at })));
      s.state = 'routed';
      publish();
      const routed = await persist(() => acts.routeTests({ ref, actor, tests: wanted, stage: s.stage, dueAt: s.dueAt, task: nextTask() }));
      for (const r of routed) {
        const entry = s.routes.find((x) => x.test === r.test);
        if (entry) entry.workQueue = r.workQueue;
      }
      return s;
    },
    {
      validator: ({ actor, tests }) => {
        requireState(...ACCEPTED_STATES);
        requireRole(actor, LAB_ROLES);
        const open = acceptedTests().filter((t) => !s.routes.some((r) => r.test === t));
        if (!open.length) refuse(FailureType.WrongStage, `every accepted test of ${input.accession} is already routed`);
        for (const t of tests ?? []) {
          if (!open.includes(t.test)) refuse(FailureType.InvalidInput, `${t.test} is not an accepted, unrouted test of ${input.accession}`);
          if (!s.pieces.some((p) => p.accession === t.piece && p.state === 'active'))
            refuse(FailureType.InvalidInput, `${t.piece} is not an active piece`);
        }
      },
    },
  );

  setHandler(
    attachOrderUpdate,
    async ({ actor, tests }) => {
      s.hasOrder = true;
      s.requestedTests = tests;
      await step('sample.order_attached', { actor, set: { has_order: true, requested_tests: tests }, details: { tests } });
      return s;
    },
    {
      validator: ({ actor, tests }) => {
        requireState('expected', 'in_transit', 'received', 'inspected');
        requireRole(actor, [...LAB_ROLES, 'clinician']);
        if (s.hasOrder) refuse(FailureType.WrongStage, `${input.accession} already has an order`);
        if (!tests.length) refuse(FailureType.InvalidInput, 'an order names at least one test');
      },
    },
  );

  setHandler(
    cancelUpdate,
    async ({ actor, reason }) => {
      s.cancelledFrom = s.state;
      s.cancelReason = reason;
      s.cancelledAt = iso(Date.now());
      s.state = 'cancelled';
      await step('sample.cancelled', { actor, set: { cancel_reason: reason }, details: { reason, from: s.cancelledFrom } });
      return s;
    },
    {
      validator: ({ actor, reason }) => {
        requireState('expected', 'in_transit', 'received', 'inspected', ...ACCEPTED_STATES);
        requireRole(actor, [...LAB_ROLES, 'clinician']);
        requireText(reason, 'a reason');
      },
    },
  );

  setHandler(
    reinstateUpdate,
    async ({ actor, reason }) => {
      s.state = s.cancelledFrom!;
      s.cancelledFrom = null;
      s.cancelReason = null;
      s.cancelledAt = null;
      await step('sample.reinstated', { actor, set: { cancel_reason: null }, details: { reason, to: s.state } });
      return s;
    },
    {
      validator: ({ actor, reason }) => {
        requireState('cancelled');
        requireRole(actor, LAB_ROLES);
        requireText(reason, 'a reason');
      },
    },
  );

  // ----- the process -----
  /**
   * A rejection met the CAPA rule: link this sample to the open CAPA that already covers it, or start a new CAPA run
   * as an abandoned child (it outlives this run), then mark the request started. A failure leaves the request
   * pending for a person; it never fails the sample's run.
   */
  async function takeUpCapaRequest(requestId: string, actor: Actor): Promise<void> {
    try {
      const plan = await acts.planCapaForRejection({ ref, requestId, actor });
      if (plan.kind === 'done') return;
      if (plan.kind === 'link') {
        await getExternalWorkflowHandle(plan.workflowId).signal(linkSourcesSignal, {
          sources: [{ type: 'sample', id: input.accession }],
          by: 'process:sample-intake',
        });
      } else {
        try {
          await startChild<typeof capaWorkflow>('capaWorkflow', {
            workflowId: plan.workflowId,
            args: [plan.input],
            parentClosePolicy: ParentClosePolicy.ABANDON,
            workflowIdReusePolicy: 'REJECT_DUPLICATE',
            typedSearchAttributes: [
              { key: EntityType, value: 'capa' },
              { key: EntityId, value: plan.input.number },
              { key: Stage, value: 'initiated' },
            ],
          });
        } catch (err) {
          // The number is kept on the request, so a retried plan names the same run: already started is done.
          if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        }
      }
      await acts.markCapaRequestStarted({ ref, requestId, workflowId: plan.workflowId, linked: plan.kind === 'link' });
    } catch (err) {
      log.warn('CAPA request left pending', { requestId, error: String(err) });
    }
  }

  async function settle(): Promise<SampleIntakeState> {
    await condition(allHandlersFinished);
    await Promise.all(background);
    await writes;
    await Promise.all(deliveries);
    return s;
  }

  if (!input.resume) {
    publish();
    if (input.arrival) {
      // Batch intake of specimens in hand: received and inspected at once, accepted when every criterion passes.
      await applyReceipt(input.arrival.receipt);
      await applyInspection(input.arrival.inspection);
      if (input.arrival.autoAccept && s.inspection?.passed && s.hasOrder) await applyAcceptance(null, 'system:batch-intake');
    }
  }

  for (;;) {
    const complete = isAccepted() && acceptedTests().length > 0 && acceptedTests().every((t) => s.results.includes(t));
    if (complete) {
      s.state = 'completed';
      await step('sample.completed', { by: 'system:sample-intake', task: null, details: { results: s.results } });
    }
    if (isFinal()) return settle();

    if (s.state === 'cancelled') {
      const until = Date.parse(s.cancelledAt!) + durationMs(input.timers.cancelRetention);
      const reinstated = await condition(() => s.state !== 'cancelled', Math.max(until - Date.now(), 1));
      if (!reinstated) {
        // Nobody reinstated it within the retention period: the run ends, the record stays cancelled.
        await settle();
        return s;
      }
      continue;
    }

    const next = timers()[0];
    const seen = changes;
    const woke = next
      ? await condition(() => changes !== seen, Math.max(next.at - Date.now(), 1))
      : (await condition(() => changes !== seen), true);
    if (!woke && next && !s.timersFired.includes(next.kind)) {
      s.timersFired.push(next.kind);
      publish();
      deliver(await persist(() => acts.sampleTimerFired({ ref, kind: next.kind, dueAt: iso(next.at) })));
    }
    if (workflowInfo().continueAsNewSuggested) {
      await settle();
      await continueAsNew<typeof sampleIntakeWorkflow>({ ...input, arrival: undefined, resume: s });
    }
  }
}

/**
 * Starts one sample-intake run per sample of a batch, a bounded number at a time, reading the batch from Postgres
 * page by page (IDs and criteria only). The runs outlive the batch run (ParentClosePolicy ABANDON).
 */
export async function sampleBatchWorkflow(input: SampleBatchInput): Promise<{ started: number }> {
  let after = input.resume?.after ?? null;
  let started = input.resume?.started ?? 0;
  let done = false;
  setHandler(batchProgressQuery, () => ({ batchId: input.batchId, started, done }));
  for (;;) {
    const page = await acts.batchSamplePage({ batchId: input.batchId, after, limit: input.pageSize, timers: input.timers });
    for (let i = 0; i < page.length; i += input.concurrency) {
      await Promise.all(
        page.slice(i, i + input.concurrency).map(async (sample) => {
          try {
            await startChild(sampleIntakeWorkflow, {
              workflowId: workflowIds.sampleIntake(sample.accession),
              args: [sample],
              parentClosePolicy: ParentClosePolicy.ABANDON,
              workflowIdReusePolicy: 'REJECT_DUPLICATE',
              typedSearchAttributes: [
                { key: EntityType, value: 'sample' },
                { key: EntityId, value: sample.accession },
                { key: Stage, value: 'expected' },
              ],
            });
          } catch (err) {
            // Already started before a continue-as-new or by a retried page: the sample has its run.
            if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
          }
          started += 1;
        }),
      );
    }
    if (page.length < input.pageSize) break;
    after = page[page.length - 1].accession;
    if (workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof sampleBatchWorkflow>({ ...input, resume: { after, started } });
    }
  }
  done = true;
  return { started };
}
