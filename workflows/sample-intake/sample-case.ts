import {
  allHandlersFinished,
  condition,
  log,
  patched,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { SampleRef, SampleStep } from '../../activities/sample-intake';
import type { SampleProof } from '../../activities/sample-proof';
import type { DeactivatedUser } from '../../common/deactivation';
import type { Actor } from '../../common/roles';
import type { SampleAction } from '../../common/sample-intake-grants';
import type { SignatureInput } from '../../common/signatures';
import {
  aliquotAccession,
  evaluateInspection,
  inspectionHash,
  temperatureClass,
  type AliquotArgs,
  type AttachOrderArgs,
  type CancelArgs,
  type DeviationArgs,
  type InspectArgs,
  type ReceiptArgs,
  type RejectArgs,
  type RouteArgs,
  type SampleDecision,
  type SampleEvent,
  type SampleIntakeInput,
  type SampleIntakeState,
  type StoreArgs,
} from '../../common/sample-intake';
import { Assignees, DueAt, EntityId, EntityType, Stage } from '../../common/search-attributes';
import { OutboxDeliveries, db, iso, startNoticeRuns } from '../lib';
import { refuseAsRecorded } from '../lib/proof';
import {
  ANALYSIS_RUNS_PATCH,
  CANCEL_ANALYSES_PATCH,
  FOLLOW_TESTS_PATCH,
  REPORT_REJECTED_SPECIMEN_PATCH,
  cancelAnalysesOfRejection,
  reportRejectedSpecimen,
  startAnalyses,
} from './analyses';
import { takeUpCapaRequest } from './capa-request';
import { cancelRetentionEnds, dueTimers } from './deadlines';
import { MAX_EVENT_IDS, acceptedTests, allResulted, failedCriteria, initialState, isAccepted, isFinal, unroutedTests } from './state';
import { nextTask, waitingOn } from './tasks';
import { proofRefusal, Turns } from './turns';

/** Rejections write an urgent notice whose run this run starts. */
const URGENT_REJECTION_PATCH = 'urgent-rejection-notice';

const BATCH_INTAKE = 'system:batch-intake';

/** What a step states besides the new state, stage, due date and next task, which the case adds itself. */
type StepFacts = Omit<SampleStep, 'ref' | 'action' | 'state' | 'stage' | 'dueAt'>;

/** The proof of a person's action: the request as the run received it, for the recording step to check. */
export const proofOf = (acceptance: { actor: Actor; grant: string }): SampleProof => person('sample.accept', acceptance);
const person = (action: SampleAction, request: { actor: Actor | null; grant?: string }, signature?: SignatureInput): SampleProof => ({
  kind: 'person',
  action,
  grant: request.grant,
  actor: request.actor,
  request,
  ...(signature && { signature }),
});

/**
 * One specimen from registration to its end: receipt, inspection against its type's written criteria, acceptance
 * (or acceptance with a signed deviation, or rejection), aliquots, storage and routing, with a custody event for
 * every handoff and timers for transit, stability, holds and STAT turnaround. Owns the run's state; every
 * transition states its facts to one activity, and the steps are written in the order they were accepted, so the
 * projection ends where the run is.
 */
export class SampleCase {
  readonly state: SampleIntakeState;
  private readonly ref: SampleRef;
  /** Bumped on every change a waiting run must look at again. */
  private changes = 0;
  /** An analysis ended since the run last asked Postgres whether every test has. */
  private testsChanged = false;
  private writes: Promise<unknown> = Promise.resolve();
  private readonly background: Promise<unknown>[] = [];
  private readonly outbox = new OutboxDeliveries();
  /** Actions taken one at a time, each given back when its proof is refused (see Turns). */
  readonly turns: Turns;

  constructor(
    private readonly input: SampleIntakeInput,
    workflowId: string,
  ) {
    this.state = input.resume ?? initialState(input, workflowId);
    this.ref = { workflowId, sampleId: input.sampleId, accession: input.accession, submitter: input.submitter };
    this.turns = new Turns(this.state, () => this.publish());
  }

  get isFinal(): boolean {
    return isFinal(this.state);
  }

  // ----- arrival: shipment, receipt, inspection -----

  /** A batch's specimen in hand: received and inspected at once, accepted when every criterion passes. */
  async begin(): Promise<void> {
    this.publish();
    const { arrival } = this.input;
    if (!arrival) return;
    // The arrival the API wrote on the sample's row at registration is the proof of these steps.
    const proof: SampleProof = { kind: 'batch', arrival };
    await this.turns.take(async () => {
      await this.receive(arrival.receipt, proof);
      await this.inspect(arrival.inspection, proof);
      if (arrival.autoAccept && this.state.inspection?.passed && this.state.hasOrder) await this.accept(null, BATCH_INTAKE, proof);
    });
  }

  async receive(receipt: ReceiptArgs, proof: SampleProof = person('sample.receive', receipt)): Promise<void> {
    const { actor, by, receivedAt, location, temperatureC, collectedAt, condition: handedOver } = receipt;
    const s = this.state;
    s.state = 'received';
    s.receivedAt = receivedAt;
    s.receivedBy = actor?.username ?? by;
    s.receivedLocation = location;
    if (collectedAt) s.collectedAt = collectedAt;
    if (temperatureC !== undefined) s.temperatureClass = temperatureClass(temperatureC);
    const recorded = await this.step('sample.received', {
      actor,
      by,
      proof,
      receipt: { receivedAt, by: s.receivedBy, location, collectedAt: s.collectedAt },
      custody: {
        event: 'received',
        from: s.shippedAt ? 'courier' : 'submitter',
        to: location,
        condition: handedOver ?? null,
        details: { temperatureC: temperatureC ?? null },
      },
      details: { location, receivedAt, temperatureC: temperatureC ?? null },
    });
    if (recorded.actor) s.receivedBy = recorded.actor.username;
  }

  async inspect(inspection: InspectArgs, proof: SampleProof = person('sample.inspect', inspection)): Promise<void> {
    const { actor, findings } = inspection;
    const s = this.state;
    const receivedAt = s.receivedAt ?? '';
    const { checks, passed } = evaluateInspection(this.input.criteria, findings, s.collectedAt, receivedAt);
    s.state = 'inspected';
    s.temperatureClass = temperatureClass(findings.temperatureC) ?? s.temperatureClass;
    const contentHash = inspectionHash(s.accession, findings, s.receivedAt);
    s.inspection = { by: actor?.username ?? BATCH_INTAKE, at: iso(Date.now()), contentHash, checks, passed };
    const recorded = await this.step('sample.inspected', {
      actor,
      by: BATCH_INTAKE,
      proof,
      inspection: { record: s.inspection, volumeMl: findings.volumeMl },
      details: { passed, failed: checks.filter((c) => !c.ok).map(({ criterion, code, detail }) => ({ criterion, code, detail })) },
    });
    if (recorded.actor && s.inspection) s.inspection.by = recorded.actor.username;
  }

  // ----- decision: accept, accept with a deviation, reject -----

  async accept(actor: Actor | null, by: string, proof: SampleProof): Promise<void> {
    const s = this.state;
    s.state = 'accepted';
    s.decision = { kind: 'accepted', by: actor?.username ?? by, at: iso(Date.now()) };
    const recorded = await this.step('sample.accepted', {
      actor,
      by,
      proof,
      custody: { event: 'accessioned', from: s.receivedLocation, to: 'accessioning bench' },
    });
    if (recorded.actor && s.decision) s.decision.by = recorded.actor.username;
  }

  async acceptWithDeviation(deviation: DeviationArgs): Promise<void> {
    const { actor, comment, signature } = deviation;
    const s = this.state;
    s.state = 'accepted_with_deviation';
    s.decision = { kind: 'accepted_with_deviation', by: actor.username, at: signature.signedAt, comment, signedBy: actor.printedName };
    const recorded = await this.step('sample.accepted_with_deviation', {
      actor,
      proof: person('sample.accept_with_deviation', deviation, signature),
      deviation: { comment },
      custody: { event: 'accessioned', from: s.receivedLocation, to: 'accessioning bench', condition: 'deviation' },
      details: { comment, failed: failedCriteria(s) },
      signature,
    });
    if (recorded.actor && s.decision) {
      s.decision.by = recorded.actor.username;
      s.decision.signedBy = recorded.actor.printedName;
    }
  }

  /** Rejects the whole specimen, or only some of its tests; a rejection that meets a CAPA rule takes up a CAPA. */
  async reject(rejection: RejectArgs): Promise<void> {
    const { actor, code, condition: specimenCondition, disposition, comment, tests } = rejection;
    const s = this.state;
    const open = acceptedTests(s);
    const rejecting = tests?.length ? tests : open;
    const full = rejecting.length >= open.length;
    const decision: SampleDecision = {
      kind: 'rejected',
      by: actor.username,
      at: iso(Date.now()),
      code,
      condition: specimenCondition,
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
      s.routes = [];
    } else {
      s.partialRejections.push(decision);
      s.routes = s.routes.filter((r) => !rejecting.includes(r.test));
    }
    this.publish();
    const recorded = await this.persist(() =>
      db.rejectSample({
        ref: this.ref,
        actor,
        code,
        condition: specimenCondition,
        disposition,
        comment,
        tests: rejecting,
        full,
        stage: s.stage,
        proof: person('sample.reject', rejection),
      }),
    );
    const { outboxIds, capaRequestId, noticeIds } = recorded;
    // The person Postgres knows initiates any CAPA (runs recorded before grants had no one else to name).
    const by = recorded.actor ?? actor;
    decision.by = by.username;
    this.outbox.deliver(outboxIds);
    if (patched(CANCEL_ANALYSES_PATCH)) await cancelAnalysesOfRejection(this.ref.sampleId, s.accession, rejecting);
    if (full && patched(REPORT_REJECTED_SPECIMEN_PATCH)) this.background.push(reportRejectedSpecimen(this.ref.sampleId, s.accession));
    if (capaRequestId && patched('open-capa-from-rejection')) this.background.push(takeUpCapaRequest(this.ref, capaRequestId, by));
    // The urgent notice's run sends SMS and Slack and escalates (runs recorded before it wrote the notice as email).
    if (noticeIds?.length && patched(URGENT_REJECTION_PATCH)) this.background.push(startNoticeRuns(noticeIds));
  }

  // ----- bench work: aliquots, storage, routing -----

  async aliquot(aliquots: AliquotArgs): Promise<void> {
    const { actor, volumesMl } = aliquots;
    const s = this.state;
    const first = s.pieces.filter((p) => p.parent !== null).length + 1;
    const children = volumesMl.map((volumeMl, i) => ({ accession: aliquotAccession(s.accession, first + i), volumeMl }));
    s.pieces.push(...children.map(({ accession, volumeMl }) => ({ accession, parent: s.accession, volumeMl, state: 'active' as const })));
    s.state = 'aliquoted';
    this.publish();
    const proof = person('sample.aliquot', aliquots);
    await this.persist(() => db.createAliquots({ ref: this.ref, actor, children, ...this.snapshot(), proof }));
  }

  /** Stores a piece; a position taken meanwhile by another sample refuses the Update and leaves the state as it was. */
  async store(storage: StoreArgs): Promise<void> {
    const { actor, piece, freezer, rack, box, position } = storage;
    const s = this.state;
    const before = { state: s.state, storage: [...s.storage] };
    s.storage = [...s.storage.filter((p) => p.piece !== piece), { piece, freezer, rack, box, position }];
    s.state = 'stored';
    this.publish();
    try {
      const proof = person('sample.store', storage);
      await this.persist(() => db.storeSample({ ref: this.ref, actor, piece, freezer, rack, box, position, ...this.snapshot(), proof }));
    } catch (err) {
      s.state = before.state;
      s.storage = before.storage;
      this.publish();
      refuseAsRecorded(err);
    }
  }

  async route(routing: RouteArgs): Promise<void> {
    const { actor, tests } = routing;
    const s = this.state;
    const wanted = tests?.length ? tests : unroutedTests(s).map((test) => ({ test, piece: s.accession }));
    const at = iso(Date.now());
    s.routes.push(...wanted.map((w) => ({ ...w, workQueue: '', at })));
    s.state = 'routed';
    this.publish();
    const proof = person('sample.route', routing);
    const routed = await this.persist(() => db.routeTests({ ref: this.ref, actor, tests: wanted, ...this.snapshot(), proof }));
    for (const { test, workQueue } of routed) {
      const entry = s.routes.find((r) => r.test === test);
      if (entry) entry.workQueue = workQueue;
    }
    if (patched(ANALYSIS_RUNS_PATCH))
      await startAnalyses(
        this.ref.sampleId,
        s.accession,
        routed.map((r) => r.test),
      );
  }

  // ----- order and cancellation -----

  async attachOrder(order: AttachOrderArgs): Promise<void> {
    const { actor, tests } = order;
    this.state.hasOrder = true;
    this.state.requestedTests = tests;
    await this.step('sample.order_attached', { actor, proof: person('sample.attach_order', order), order: { tests }, details: { tests } });
  }

  async cancel(cancellation: CancelArgs): Promise<void> {
    const { actor, reason } = cancellation;
    const s = this.state;
    s.cancelledFrom = s.state;
    s.cancelReason = reason;
    s.cancelledAt = iso(Date.now());
    s.state = 'cancelled';
    await this.step('sample.cancelled', {
      actor,
      proof: person('sample.cancel', cancellation),
      cancelReason: reason,
      details: { reason, from: s.cancelledFrom },
    });
  }

  async reinstate(reinstatement: CancelArgs): Promise<void> {
    const { actor, reason } = reinstatement;
    const s = this.state;
    s.state = s.cancelledFrom ?? s.state;
    s.cancelledFrom = null;
    s.cancelReason = null;
    s.cancelledAt = null;
    await this.step('sample.reinstated', {
      actor,
      proof: person('sample.reinstate', reinstatement),
      cancelReason: null,
      details: { reason, to: s.state },
    });
  }

  /** Waits for a reinstatement until the retention period ends; false when nobody reinstated the sample. */
  async reinstatedInTime(): Promise<boolean> {
    const until = cancelRetentionEnds(this.state.cancelledAt ?? iso(Date.now()), this.input);
    return condition(() => this.state.state !== 'cancelled', Math.max(until - Date.now(), 1));
  }

  // ----- machine events: couriers, instruments, external systems -----

  /**
   * Applies a machine event once (by its event ID), in the background of the signal that brought it. The event's
   * webhook delivery is its proof: an event the recording step cannot bear out is given back (and its event ID
   * forgotten, so the real delivery of that ID still applies); the run carries on.
   */
  onEvent(event: SampleEvent): void {
    if (!this.turns.inTurn) {
      if (this.remember(event)) this.background.push(this.applyEvent(event));
      return;
    }
    const proven = this.turns.take(async () => {
      if (!this.remember(event)) return;
      try {
        await this.applyEvent(event);
      } catch (err) {
        if (proofRefusal(err)) this.forget(event);
        throw err;
      }
    });
    this.background.push(
      proven.catch((err: unknown) => {
        if (!proofRefusal(err)) throw err;
        log.warn('machine event refused: its delivery does not bear it out', { eventId: String(event.eventId).slice(0, 100) });
      }),
    );
  }

  /** Notes an event as applied; false when it already was. */
  private remember(event: SampleEvent): boolean {
    const applied = this.state.appliedEvents;
    if (applied.includes(event.eventId)) return false;
    applied.push(event.eventId);
    if (applied.length > MAX_EVENT_IDS) applied.shift();
    return true;
  }

  private forget(event: SampleEvent): void {
    const applied = this.state.appliedEvents;
    const at = applied.lastIndexOf(event.eventId);
    if (at >= 0) applied.splice(at, 1);
  }

  private async applyEvent(event: SampleEvent): Promise<void> {
    const s = this.state;
    const proof: SampleProof = { kind: 'delivery', event };
    const by = `system:${event.source}`;
    if (event.type === 'shipped' && s.state === 'expected') {
      s.state = 'in_transit';
      s.shippedAt = event.at;
      if (event.collectedAt) s.collectedAt = event.collectedAt;
      await this.step('sample.shipped', {
        by,
        proof,
        collectedAt: s.collectedAt,
        custody: { event: 'shipped', from: event.location ?? 'submitter', to: 'courier', details: { eventId: event.eventId } },
        details: { eventId: event.eventId },
      });
    } else if (event.type === 'received' && (s.state === 'expected' || s.state === 'in_transit')) {
      const collected = event.collectedAt ?? s.collectedAt;
      // A receipt before collection is an instrument's error: it is not applied.
      if (collected && Date.parse(collected) > Date.parse(event.at)) return;
      await this.receive(
        {
          actor: null,
          by,
          receivedAt: event.at,
          location: event.location ?? event.source,
          temperatureC: event.temperatureC,
          collectedAt: event.collectedAt,
        },
        proof,
      );
    } else if (event.type === 'order' && event.tests?.length && !s.hasOrder) {
      s.hasOrder = true;
      s.requestedTests = event.tests;
      await this.step('sample.order_attached', {
        by,
        proof,
        order: { tests: event.tests },
        details: { tests: event.tests, eventId: event.eventId },
      });
    } else if (event.type === 'result_ready' && event.tests?.length) {
      const tests = event.tests;
      s.results.push(...tests.filter((test) => !s.results.includes(test)));
      this.changes += 1;
      await this.persist(() => db.recordResults({ ref: this.ref, tests, by, eventId: event.eventId, proof }));
    }
  }

  // ----- a deactivated submitter -----

  /**
   * The submitter was deactivated: the tasks they hold in this run (recollection requests) go to the lab director
   * as a role, and so does every later one (the recording steps address a deactivated submitter's work to the lab
   * director). Written in its turn after the writes before it, so a rejection under way is handed over too. The
   * recording step believes the notice only when Postgres shows the user inactive; one it refuses changes nothing.
   */
  async handOverFrom(user: DeactivatedUser): Promise<void> {
    const submitter = this.ref.submitter;
    if (submitter?.kind !== 'user' || submitter.userId !== user.userId) return;
    try {
      const { outboxIds } = await this.persist(() => db.handOverSampleWorkOfDeactivated({ ref: this.ref, user }));
      this.outbox.deliver(outboxIds);
    } catch (err) {
      if (!proofRefusal(err)) throw err;
    }
  }

  // ----- completion and timers -----

  /** Whether a change of the tests is still to be looked at (carried across continue-as-new). */
  get testsChangePending(): boolean {
    return this.testsChanged;
  }

  /** A run continued as new with a change still to look at: the first completion check asks Postgres. */
  recheckTests(): void {
    this.testsChanged = true;
  }

  /** An analysis of this sample ended: the run asks Postgres whether every test has. */
  onTestsChanged(): void {
    this.testsChanged = true;
    this.changes += 1;
  }

  /**
   * Whether the sample's work is done. Runs recorded before analysis runs: every accepted test's instrument result
   * has been received. Since: every accepted test's analysis is released or cancelled (Postgres says), an
   * instrument's `result.ready` being only the notice that a result was received; a sample whose tests have no
   * analysis runs (routed before they existed) still completes on its results.
   */
  private async testsDone(): Promise<boolean> {
    const s = this.state;
    if (!this.testsChanged && !allResulted(s)) return false;
    if (!patched(FOLLOW_TESTS_PATCH)) return allResulted(s);
    this.testsChanged = false;
    const { settled, analyses } = await db.sampleTestsSettled({ sampleId: this.ref.sampleId });
    return analyses === 0 ? allResulted(s) : settled;
  }

  /** Every accepted test is done (see testsDone): the sample is completed. */
  async completeWhenResulted(): Promise<void> {
    // In turn: results still being proven (or given back) are not yet the sample's.
    await this.turns.take(async () => {
      const s = this.state;
      if (!(isAccepted(s) && acceptedTests(s).length > 0)) return;
      if (!(await this.testsDone())) return;
      s.state = 'completed';
      await this.step('sample.completed', {
        by: 'system:sample-intake',
        proof: { kind: 'run' },
        task: null,
        details: { results: s.results },
      });
    });
  }

  /** Waits for the next change, or for the soonest timer, which fires once: recorded, and people told. */
  async waitForChangeOrTimer(): Promise<void> {
    const [next] = dueTimers(this.state, this.input);
    const seen = this.changes;
    const changed = () => this.changes !== seen;
    const woke = next ? await condition(changed, Math.max(next.at - Date.now(), 1)) : (await condition(changed), true);
    if (woke || !next || this.state.timersFired.includes(next.kind)) return;
    if (this.turns.inTurn) {
      // In turn, so an action whose proof is refused cannot have set a timer off; a timer no longer due waits.
      await this.turns.take(() => this.fire(next));
    } else {
      await this.fire(next);
    }
  }

  private async fire(next: { kind: SampleIntakeState['timersFired'][number]; at: number }): Promise<void> {
    if (this.turns.inTurn && !dueTimers(this.state, this.input).some((t) => t.kind === next.kind && t.at <= Date.now())) return;
    this.state.timersFired.push(next.kind);
    this.publish();
    const outboxIds = await this.persist(() => db.sampleTimerFired({ ref: this.ref, kind: next.kind, dueAt: iso(next.at) }));
    this.outbox.deliver(outboxIds);
  }

  /** Resolves once every handler, machine event, write and email of the run has finished. */
  async settle(): Promise<SampleIntakeState> {
    await condition(allHandlersFinished);
    await Promise.all(this.background);
    await this.writes;
    await this.outbox.quiet();
    return this.state;
  }

  // ----- recording -----

  /** Stage, due date and search attributes follow the state; a waiting run looks again. */
  private publish(): void {
    const s = this.state;
    s.stage = s.state === 'inspected' && !s.hasOrder ? 'held_without_order' : s.state;
    const [next] = dueTimers(s, this.input);
    s.dueAt = next ? iso(next.at) : null;
    this.changes += 1;
    const assignees = waitingOn(s);
    upsertSearchAttributes([
      { key: EntityType, value: 'sample' },
      { key: EntityId, value: this.input.accession },
      { key: Stage, value: s.stage },
      { key: Assignees, value: assignees.length ? assignees : null },
      { key: DueAt, value: s.dueAt ? new Date(s.dueAt) : null },
    ]);
  }

  private snapshot() {
    return { stage: this.state.stage, dueAt: this.state.dueAt, task: nextTask(this.state) };
  }

  /** Publishes the current state and records it as one step: projection, custody, inbox and audit in one activity. */
  private step(action: string, facts: StepFacts) {
    this.publish();
    const step: SampleStep = { ref: this.ref, action, state: this.state.state, ...this.snapshot(), ...facts };
    return this.persist(() => db.recordSampleStep(step));
  }

  private persist<T>(write: () => Promise<T>): Promise<T> {
    const next = this.writes.then(write, write);
    this.writes = next.catch(() => undefined);
    return next;
  }
}
