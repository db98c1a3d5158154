import {
  CancellationScope,
  allHandlersFinished,
  isCancellation,
  patched,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities, DocRef } from '../activities';
import {
  completePeriodicReviewUpdate,
  decideUpdate,
  documentStateQuery,
  extendDueUpdate,
  FINAL_VERSION_STATES,
  obsoleteUpdate,
  reassignUpdate,
  supersededSignal,
  uploadRevisionUpdate,
  withdrawUpdate,
  type DecideArgs,
  type DocumentApprovalInput,
  type DocumentApprovalState,
  type ObsoleteArgs,
  type StageStatus,
  type SupersededArgs,
  type VersionState,
  type WithdrawArgs,
} from '../common/document-approval';
import { durationMs } from '../common/durations';
import { FailureType, refuse } from '../common/failures';
import type { Actor } from '../common/roles';
import { hasDecided, openSlotFor, pendingAssigneeKeys, resolveStage } from '../common/routing-rules';
import { assigneeKey } from '../common/assignees';
import { Assignees, DueAt, EntityId, EntityType, Stage } from '../common/search-attributes';

// Each activity is one short transaction; a tight timeout means work lost with a crashed worker is retried soon.
const acts = proxyActivities<Activities>({
  startToCloseTimeout: '15s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m', nonRetryableErrorTypes: [FailureType.NotFound] },
});
// Email waits for the relay as long as it takes, without holding up the process.
const mail = proxyActivities<Activities>({
  startToCloseTimeout: '45s',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '15m' },
});

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * One version of a controlled document, from submission to its end: review stages with electronic signatures,
 * revision rounds, the wait for the effective date, periodic reviews while effective, and supersession.
 */
export async function documentApprovalWorkflow(input: DocumentApprovalInput): Promise<DocumentApprovalState> {
  const { workflowId } = workflowInfo();
  const doc: DocRef = {
    workflowId,
    documentId: input.documentId,
    documentNumber: input.documentNumber,
    versionId: input.versionId,
    version: input.version,
    title: input.title,
    authorId: input.author.userId,
  };
  const s: DocumentApprovalState = input.resume?.snapshot ?? {
    workflowId,
    documentNumber: input.documentNumber,
    version: input.version,
    state: 'in_review',
    round: 1,
    contentHash: input.contentHash,
    currentStage: null,
    stages: input.routing.map((stage) => ({
      name: stage.name,
      rule: stage.rule,
      due: stage.due,
      status: 'pending',
      slots: stage.assignees.map((assignee) => ({ assignee })),
      reminded: false,
      escalated: false,
    })),
    dueAt: null,
    pendingAssignees: [],
    effectiveDate: input.effectiveDate ?? null,
    effectiveAt: null,
    nextPeriodicReviewAt: null,
    periodicReviewOpen: false,
    outcome: null,
  };
  let reviewCycle = input.resume?.reviewCycle ?? 0;
  let withdrawal: WithdrawArgs | null = null;
  let obsoletion: ObsoleteArgs | null = null;
  let supersession: SupersededArgs | null = null;
  let revision: { contentHash: string; actor: Actor } | null = null;
  let deadlineChanges = 0;
  let reviewChanges = 0;
  // Decisions accepted but not yet recorded, per stage: a stage closes only once its own are written.
  const decisionsInFlight: number[] = input.routing.map(() => 0);
  const deliveries: Promise<unknown>[] = [];
  const deliver = (outboxIds: string[]) => {
    if (outboxIds.length) deliveries.push(mail.deliverEmails(outboxIds));
  };
  const isFinal = (state: VersionState) => FINAL_VERSION_STATES.includes(state);

  function publish(): void {
    const stage = s.currentStage === null ? null : s.stages[s.currentStage];
    s.pendingAssignees =
      s.state === 'in_review' && stage
        ? pendingAssigneeKeys(stage)
        : s.state === 'changes_requested'
          ? [`user:${input.author.username}`]
          : s.periodicReviewOpen
            ? ['role:document_control']
            : [];
    s.dueAt =
      s.state === 'in_review'
        ? (stage?.dueAt ?? null)
        : s.state === 'approved'
          ? s.effectiveDate
          : s.state === 'effective'
            ? s.nextPeriodicReviewAt
            : null;
    upsertSearchAttributes([
      { key: EntityType, value: 'document' },
      { key: EntityId, value: input.documentNumber },
      { key: Stage, value: s.state },
      { key: Assignees, value: s.pendingAssignees.length ? s.pendingAssignees : null },
      { key: DueAt, value: s.dueAt ? new Date(s.dueAt) : null },
    ]);
  }

  // ----- validators: refuse without touching history -----
  function requireState(...allowed: VersionState[]): void {
    if (allowed.includes(s.state)) return;
    if (isFinal(s.state))
      refuse(FailureType.RunFinished, `${input.documentNumber} v${input.version} is ${s.state}; nothing more can be done`);
    refuse(FailureType.WrongStage, `${input.documentNumber} v${input.version} is ${s.state}, not ${allowed.join(' or ')}`);
  }
  function requireDocumentControl(actor: Actor): void {
    if (!actor.roles.includes('document_control')) refuse(FailureType.Forbidden, 'only document control may do this');
  }
  function requireText(value: string | undefined, what: string): void {
    if (!value?.trim()) refuse(FailureType.InvalidInput, `${what} is required`);
  }
  function activeStage() {
    const stage = s.currentStage === null ? undefined : s.stages[s.currentStage];
    if (!stage || stage.status !== 'active' || resolveStage(stage) !== 'active') {
      refuse(FailureType.WrongStage, 'no review stage is waiting for decisions right now');
    }
    return stage;
  }
  /**
   * The stage a decision made now belongs to: the current one while it waits for decisions (or is being opened),
   * or the next one when the current stage has just been approved. A decision for a stage that is still opening
   * is held until its tasks exist rather than refused.
   */
  function decisionStage(): number {
    const i = s.currentStage;
    if (i === null) refuse(FailureType.WrongStage, 'no review stage is waiting for decisions right now');
    const outcome = resolveStage(s.stages[i]);
    if (outcome === 'active' && s.stages[i].status !== 'cancelled') return i;
    if (outcome === 'approved' && i + 1 < s.stages.length) return i + 1;
    refuse(FailureType.WrongStage, 'no review stage is waiting for decisions right now');
  }

  function validateDecision({ actor, decision, comment, signature }: DecideArgs): void {
    requireState('in_review');
    if (withdrawal) refuse(FailureType.WrongStage, 'the version is being withdrawn');
    const stage = s.stages[decisionStage()];
    if (actor.userId === input.author.userId) refuse(FailureType.Forbidden, 'the author cannot review or approve their own version');
    if (hasDecided(stage, actor.userId))
      refuse(FailureType.DuplicateDecision, `${actor.username} has already decided in stage "${stage.name}"`);
    if (!openSlotFor(stage, actor)) refuse(FailureType.NotAssignee, `${actor.username} is not an assignee of stage "${stage.name}"`);
    if (decision === 'approve') {
      if (!signature) refuse(FailureType.InvalidInput, 'an approval must be signed');
      if (signature.contentHash !== s.contentHash) {
        refuse(FailureType.StaleContentHash, `the content changed since it was read: current hash is ${s.contentHash}`);
      }
    } else {
      requireText(comment, 'a comment');
    }
  }

  setHandler(documentStateQuery, () => s);

  setHandler(
    decideUpdate,
    async ({ actor, decision, comment, signature }) => {
      const stageIndex = decisionStage();
      const stage = s.stages[stageIndex];
      const slot = openSlotFor(stage, actor)!;
      // Taken synchronously, before any await, so a concurrent decision cannot claim the same slot.
      slot.decision = {
        kind: decision,
        userId: actor.userId,
        username: actor.username,
        printedName: actor.printedName,
        at: signature?.signedAt ?? iso(Date.now()),
        comment,
        meaning: signature?.meaning,
      };
      decisionsInFlight[stageIndex] += 1;
      try {
        await condition(() => (s.currentStage === stageIndex && stage.status === 'active') || withdrawal !== null);
        if (withdrawal) return s;
        await acts.recordDecision({
          doc,
          round: s.round,
          stageIndex,
          stageName: stage.name,
          slotKey: assigneeKey(slot.assignee),
          actor,
          decision,
          comment,
          signature,
        });
      } finally {
        decisionsInFlight[stageIndex] -= 1;
      }
      publish();
      return s;
    },
    { validator: validateDecision },
  );

  setHandler(
    withdrawUpdate,
    async (args) => {
      withdrawal = args;
      await condition(() => s.state === 'withdrawn');
      return s;
    },
    {
      validator: ({ actor, reason }) => {
        requireState('in_review', 'changes_requested', 'approved');
        if (actor.userId !== input.author.userId && !actor.roles.includes('document_control')) {
          refuse(FailureType.Forbidden, 'only the author or document control may withdraw a version');
        }
        requireText(reason, 'a reason');
      },
    },
  );

  setHandler(
    reassignUpdate,
    async ({ actor, from, to, reason }) => {
      const stageIndex = s.currentStage as number;
      const stage = s.stages[stageIndex];
      const slot = stage.slots.find((sl) => !sl.decision && assigneeKey(sl.assignee) === from)!;
      const previous = slot.assignee;
      slot.assignee = to;
      publish();
      deliver(
        await acts.reassignStage({
          doc,
          round: s.round,
          stageIndex,
          stageName: stage.name,
          from: previous,
          to,
          dueAt: stage.dueAt!,
          actor,
          reason,
        }),
      );
      return s;
    },
    {
      validator: ({ actor, from, to, reason }) => {
        requireState('in_review');
        requireDocumentControl(actor);
        requireText(reason, 'a reason');
        const stage = activeStage();
        if (!stage.slots.some((sl) => !sl.decision && assigneeKey(sl.assignee) === from)) {
          refuse(FailureType.InvalidInput, `${from} holds no undecided slot in stage "${stage.name}"`);
        }
        if (to.kind === 'user' && to.userId === input.author.userId)
          refuse(FailureType.InvalidInput, 'the author cannot review their own version');
        if (stage.slots.some((sl) => assigneeKey(sl.assignee) === assigneeKey(to))) {
          refuse(FailureType.InvalidInput, `${assigneeKey(to)} is already an assignee of stage "${stage.name}"`);
        }
      },
    },
  );

  setHandler(
    extendDueUpdate,
    async ({ actor, dueAt, reason }) => {
      const stageIndex = s.currentStage as number;
      const stage = s.stages[stageIndex];
      const fromDueAt = stage.dueAt!;
      stage.dueAt = iso(Date.parse(dueAt));
      stage.reminded = Date.parse(stage.dueAt) - durationMs(input.reminderBefore) <= Date.now();
      stage.escalated = false;
      deadlineChanges += 1;
      publish();
      await acts.extendStageDue({ doc, round: s.round, stageIndex, stageName: stage.name, fromDueAt, dueAt: stage.dueAt, actor, reason });
      return s;
    },
    {
      validator: ({ actor, dueAt, reason }) => {
        requireState('in_review');
        requireDocumentControl(actor);
        requireText(reason, 'a reason');
        const stage = activeStage();
        const next = Date.parse(dueAt);
        if (Number.isNaN(next)) refuse(FailureType.InvalidInput, 'dueAt must be an ISO date-time');
        if (next <= Date.parse(stage.dueAt!) || next <= Date.now()) {
          refuse(FailureType.InvalidInput, `the new due date must be later than the current one (${stage.dueAt}) and in the future`);
        }
      },
    },
  );

  setHandler(
    uploadRevisionUpdate,
    async ({ actor, contentHash }) => {
      const round = s.round;
      revision = { contentHash, actor };
      await condition(() => s.round > round || isFinal(s.state));
      return s;
    },
    {
      validator: ({ actor, contentHash }) => {
        requireState('changes_requested');
        if (revision) refuse(FailureType.DuplicateDecision, 'a revision is already being applied');
        if (actor.userId !== input.author.userId) refuse(FailureType.Forbidden, 'only the author may upload a revision');
        if (contentHash === s.contentHash)
          refuse(FailureType.InvalidInput, 'the revision has the same content as the version under review');
      },
    },
  );

  setHandler(
    obsoleteUpdate,
    async (args) => {
      obsoletion = args;
      await condition(() => s.state === 'obsolete');
      return s;
    },
    {
      validator: ({ actor, reason }) => {
        requireState('effective');
        requireDocumentControl(actor);
        requireText(reason, 'a reason');
      },
    },
  );

  setHandler(
    completePeriodicReviewUpdate,
    async ({ actor, comment }) => {
      const nextReviewAt = iso(Date.now() + durationMs(input.periodicReview));
      await acts.completePeriodicReview({ doc, cycle: reviewCycle, actor, comment, nextReviewAt });
      s.periodicReviewOpen = false;
      s.nextPeriodicReviewAt = nextReviewAt;
      reviewChanges += 1;
      publish();
      return s;
    },
    {
      validator: ({ actor, comment }) => {
        requireState('effective');
        if (!s.periodicReviewOpen) refuse(FailureType.WrongStage, 'no periodic review is open');
        requireDocumentControl(actor);
        requireText(comment, 'a comment');
      },
    },
  );

  setHandler(supersededSignal, (args) => {
    supersession = args;
  });

  // ----- the process -----
  async function runStage(stageIndex: number): Promise<StageStatus> {
    const stage = s.stages[stageIndex];
    const openedAt = Date.now();
    stage.dueAt = iso(openedAt + durationMs(stage.due));
    // A reminder is only worth sending when it falls after the stage opened.
    stage.reminded = Date.parse(stage.dueAt) - durationMs(input.reminderBefore) <= openedAt;
    stage.escalated = false;
    s.currentStage = stageIndex;
    publish();
    deliver(
      await acts.openReviewStage({
        doc,
        round: s.round,
        stageIndex,
        stageName: stage.name,
        assignees: stage.slots.map((slot) => slot.assignee),
        dueAt: stage.dueAt,
      }),
    );
    // Decisions are accepted once the stage's tasks exist, so nobody acts on a stage their inbox does not show.
    stage.status = 'active';
    publish();

    while (resolveStage(stage) === 'active' && !withdrawal) {
      const now = Date.now();
      const due = Date.parse(stage.dueAt);
      const remindAt = due - durationMs(input.reminderBefore);
      const pending = stage.slots.filter((slot) => !slot.decision).map((slot) => slot.assignee);
      if (!stage.escalated && now >= due) {
        stage.reminded = stage.escalated = true;
        deliver(await acts.remindStage({ doc, round: s.round, stageName: stage.name, pending, dueAt: stage.dueAt, kind: 'escalation' }));
        continue;
      }
      if (!stage.reminded && now >= remindAt) {
        stage.reminded = true;
        deliver(await acts.remindStage({ doc, round: s.round, stageName: stage.name, pending, dueAt: stage.dueAt, kind: 'reminder' }));
        continue;
      }
      const seen = deadlineChanges;
      const wake = () => resolveStage(stage) !== 'active' || withdrawal !== null || deadlineChanges !== seen;
      const wakeAt = !stage.reminded ? remindAt : !stage.escalated ? due : null;
      if (wakeAt === null) await condition(wake);
      else await condition(wake, Math.max(wakeAt - now, 1));
    }
    await condition(() => decisionsInFlight[stageIndex] === 0);
    stage.status = withdrawal ? 'cancelled' : resolveStage(stage);
    await acts.closeReviewStage({ doc, round: s.round, stageIndex, stageName: stage.name, outcome: stage.status });
    return stage.status;
  }

  async function review(): Promise<'approved' | 'rejected' | 'withdrawn'> {
    for (;;) {
      let outcome: StageStatus = 'approved';
      for (let i = 0; i < s.stages.length && outcome === 'approved'; i++) outcome = await runStage(i);
      const decisive =
        s.currentStage === null
          ? undefined
          : s.stages[s.currentStage].slots.find((slot) => slot.decision && slot.decision.kind !== 'approve')?.decision;
      s.currentStage = null;
      if (withdrawal) return 'withdrawn';
      if (outcome === 'approved') return 'approved';
      s.outcome = decisive ? { by: decisive.username, comment: decisive.comment ?? '' } : null;
      if (outcome === 'rejected') return 'rejected';

      const requestRevision = async () =>
        deliver(
          await acts.requestRevision({
            doc,
            round: s.round,
            by: { username: decisive!.username, printedName: decisive!.printedName },
            comment: decisive!.comment ?? '',
          }),
        );
      // The author may act once their revision task exists; runs started before this rule announced the state first.
      if (patched('changes-requested-after-task')) {
        await requestRevision();
        s.state = 'changes_requested';
        publish();
      } else {
        s.state = 'changes_requested';
        publish();
        await requestRevision();
      }
      await condition(() => revision !== null || withdrawal !== null);
      if (withdrawal) return 'withdrawn';
      const { contentHash, actor } = revision!;
      await acts.applyRevision({ doc, round: s.round + 1, contentHash, actor });
      s.round += 1;
      s.contentHash = contentHash;
      s.outcome = null;
      s.state = 'in_review';
      s.stages.forEach((stage) => {
        stage.status = 'pending';
        stage.slots.forEach((slot) => delete slot.decision);
      });
      revision = null;
    }
  }

  async function finish(state: 'rejected' | 'withdrawn' | 'obsolete', by?: Actor, comment?: string): Promise<void> {
    deliver(await acts.closeVersion({ doc, state, by, comment }));
    s.state = state;
    if (by) s.outcome = { by: by.username, comment: comment ?? '' };
    publish();
  }

  async function settle(): Promise<DocumentApprovalState> {
    await condition(allHandlersFinished);
    await Promise.all(deliveries);
    return s;
  }

  async function run(): Promise<DocumentApprovalState> {
    if (!input.resume) {
      publish();
      const outcome = await review();
      if (outcome === 'withdrawn') {
        await finish('withdrawn', withdrawal!.actor, withdrawal!.reason);
        return settle();
      }
      if (outcome === 'rejected') {
        deliver(await acts.closeVersion({ doc, state: 'rejected', comment: s.outcome?.comment }));
        s.state = 'rejected';
        publish();
        return settle();
      }
      deliver(await acts.closeVersion({ doc, state: 'approved' }));
      s.state = 'approved';
      publish();

      const effectiveAt = s.effectiveDate ? Date.parse(s.effectiveDate) : 0;
      if (effectiveAt > Date.now()) await condition(() => withdrawal !== null, effectiveAt - Date.now());
      if (withdrawal) {
        await finish('withdrawn', (withdrawal as WithdrawArgs).actor, (withdrawal as WithdrawArgs).reason);
        return settle();
      }
      const nextReviewAt = iso(Date.now() + durationMs(input.periodicReview));
      const { supersededWorkflowId, outboxIds } = await acts.makeEffective({ doc, nextReviewAt });
      deliver(outboxIds);
      s.state = 'effective';
      s.effectiveAt = iso(Date.now());
      s.nextPeriodicReviewAt = nextReviewAt;
      publish();
      if (supersededWorkflowId && supersededWorkflowId !== workflowId) {
        try {
          await getExternalWorkflowHandle(supersededWorkflowId).signal(supersededSignal, {
            byWorkflowId: workflowId,
            byVersion: input.version,
          });
        } catch {
          // The superseded version's run has already ended; Postgres already records the supersession.
        }
      }
    }

    // Effective: periodic reviews until a newer version supersedes this one or document control retires it.
    for (;;) {
      const seen = reviewChanges;
      const wake = () => supersession !== null || obsoletion !== null || reviewChanges !== seen;
      const dueIn = Date.parse(s.nextPeriodicReviewAt!) - Date.now();
      const woke = s.periodicReviewOpen ? (await condition(wake), true) : await condition(wake, Math.max(dueIn, 1));
      if (supersession) {
        await acts.closeOpenTasks({ doc, reason: `superseded by v${(supersession as SupersededArgs).byVersion}` });
        s.state = 'superseded';
        publish();
        return settle();
      }
      if (obsoletion) {
        await finish('obsolete', (obsoletion as ObsoleteArgs).actor, (obsoletion as ObsoleteArgs).reason);
        return settle();
      }
      if (!woke) {
        reviewCycle += 1;
        s.periodicReviewOpen = true;
        publish();
        deliver(await acts.openPeriodicReview({ doc, cycle: reviewCycle, dueAt: s.nextPeriodicReviewAt! }));
      }
      if (workflowInfo().continueAsNewSuggested) {
        await condition(allHandlersFinished);
        await Promise.all(deliveries);
        await continueAsNew<typeof documentApprovalWorkflow>({ ...input, resume: { snapshot: s, reviewCycle } });
      }
    }
  }

  try {
    return await run();
  } catch (err) {
    if (!isCancellation(err)) throw err;
    // An operator cancelled the run: leave the record consistent before ending.
    await CancellationScope.nonCancellable(async () => {
      if (['in_review', 'changes_requested', 'approved'].includes(s.state)) {
        deliver(await acts.closeVersion({ doc, state: 'withdrawn', comment: 'the run was cancelled by an administrator' }));
        s.state = 'withdrawn';
      } else {
        await acts.closeOpenTasks({ doc, reason: 'the run was cancelled by an administrator' });
      }
      publish();
      await Promise.allSettled(deliveries);
    });
    throw err;
  }
}
