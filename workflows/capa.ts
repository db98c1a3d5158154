import {
  CancellationScope,
  ParentClosePolicy,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
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
import type { CapaProjection, CapaStep } from '../activities/capa';
import { contentHashOf } from '../common/capa-hash';
import {
  CAPA_STAGES,
  DEFAULT_MAX_EXTENSIONS,
  DEFAULT_REOPEN_WINDOW,
  RISK_DURATIONS,
  cancelCapaUpdate,
  capaStateQuery,
  closeCapaUpdate,
  completeActionUpdate,
  containmentUpdate,
  decideExtensionUpdate,
  decidePlanUpdate,
  effectivenessUpdate,
  investigationUpdate,
  linkSourcesSignal,
  linkSourcesUpdate,
  reopenCapaUpdate,
  requestExtensionUpdate,
  riskOf,
  sourceKey,
  submitPlanUpdate,
  triageUpdate,
  userDeactivatedSignal,
  type CapaAction,
  type CapaInput,
  type CapaStage,
  type CapaState,
  type CloseArgs,
  type EffectivenessArgs,
  type LinkSourcesArgs,
} from '../common/capa';
import { type AssigneeRef } from '../common/assignees';
import { durationMs } from '../common/durations';
import { FailureType, refuse } from '../common/failures';
import { workflowIds } from '../common/ids';
import type { Actor } from '../common/roles';
import { assigneeKey } from '../common/assignees';
import { Assignees, DueAt, EntityId, EntityType, Stage } from '../common/search-attributes';
import { processDecisionSignal, type SupplierDecision } from '../common/supplier-qualification';
import type { supplierQualificationWorkflow } from './supplier-qualification';

// Each step is one short transaction; a tight timeout means work lost with a crashed worker is retried soon.
const acts = proxyActivities<Activities>({
  startToCloseTimeout: '15s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
});
// Email waits for the relay as long as it takes, without holding up the process.
const mail = proxyActivities<Activities>({
  startToCloseTimeout: '45s',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '15m' },
});

const iso = (ms: number) => new Date(ms).toISOString();
const QA: AssigneeRef = { kind: 'role', role: 'qa_manager' };
const FINISHED: CapaStage[] = ['closed', 'cancelled'];

/**
 * One corrective and preventive action, from initiation to closure (and reopening), in one durable run.
 *
 * Actions are state inside this run, not child workflows. What an action may do depends on the CAPA around it:
 * closure is refused while any is open, effectiveness is verified by someone who implemented none of them, the
 * stage moves on when the last one is done, and a failed check replaces the whole plan. Kept in one run, each of
 * those rules is a synchronous check in an update validator instead of a cross-run conversation, every open
 * action's deadline is one timer of the CAPA's single wait, and 1,000 open CAPAs are 1,000 runs, not 1,000 × n.
 * An action is small (a description, an owner, a due date, evidence references), so the state stays small.
 */
export async function capaWorkflow(input: CapaInput): Promise<CapaState> {
  const { workflowId } = workflowInfo();
  const capa = { workflowId, number: input.number, title: input.title };
  const s: CapaState = input.resume?.snapshot ?? {
    workflowId,
    number: input.number,
    title: input.title,
    description: input.description,
    rev: 0,
    stage: 'initiated',
    outcome: null,
    round: 1,
    sources: dedupe(input.sources),
    initiatedBy: input.initiatedBy.username,
    risk: null,
    owner: null,
    qaManager: null,
    durations: { ...RISK_DURATIONS.medium, ...input.durations },
    maxExtensions: input.maxExtensions ?? DEFAULT_MAX_EXTENSIONS,
    deadline: null,
    containment: null,
    investigation: null,
    plan: null,
    planApproval: null,
    effectivenessDueAt: null,
    effectiveness: [],
    closureContentHash: null,
    closure: null,
    closedAt: null,
    reopenUntil: null,
    cancellation: null,
    triageDecision: null,
    reopenings: [],
    previousRounds: [],
    reassignments: [],
    dueAt: null,
    pendingAssignees: [],
  };
  let changes = 0;
  let pendingMail = 0;
  const deliver = (outboxIds: string[]) => {
    if (!outboxIds.length) return;
    pendingMail += 1;
    const done = () => void (pendingMail -= 1);
    mail.deliverEmails(outboxIds).then(done, done);
  };

  function dedupe(sources: CapaInput['sources']) {
    const seen = new Set<string>();
    return sources.filter((src) => !seen.has(sourceKey(src)) && seen.add(sourceKey(src)));
  }
  const base = () => `${workflowId}:r${s.round}`;
  const openActions = () => (s.plan?.actions ?? []).filter((a) => a.state === 'open');
  const escalateTo = (): AssigneeRef => (s.qaManager ? { kind: 'user', ...s.qaManager } : QA);

  /** The inbox tasks the current state calls for: what each is about, who holds it, and when it is due. */
  function wantedTasks(): { what: string; kind: string; title: string; assignee: AssigneeRef; dueAt: string | null }[] {
    const t = (what: string, title: string, assignee: AssigneeRef, dueAt: string | null = null) => ({
      what,
      kind: `capa.${what.split(':')[0]}`,
      title: `${title} ${s.number} "${s.title}"`,
      assignee,
      dueAt,
    });
    switch (s.stage) {
      case 'triage':
        return [t('triage', 'Triage', QA)];
      case 'containment':
        return [t('containment', 'Contain', s.owner!, s.deadline?.dueAt)];
      case 'investigation':
        return [t('investigation', 'Investigate and plan', s.owner!, s.deadline?.dueAt)];
      case 'plan_approval':
        return [t('plan_approval', 'Approve the action plan of', QA)];
      case 'implementation':
        return openActions().flatMap((a) => [
          t(`action:${a.id}`, `Action ${a.id} (${a.type}) of`, a.owner, a.dueAt),
          ...(a.extensionRequest ? [t(`extension:${a.id}:${a.extensionRequests}`, `Extension request for ${a.id} of`, QA)] : []),
        ]);
      case 'effectiveness_review':
        return latestPassed() ? [t('closure', 'Close', QA)] : [t('effectiveness', 'Verify the effectiveness of', QA)];
      default:
        return [];
    }
  }
  const latestPassed = () => s.effectiveness.find((e) => e.round === s.round && e.passed) ?? null;

  function publish(): void {
    changes += 1;
    const tasks = wantedTasks();
    s.pendingAssignees = [...new Set(tasks.map((task) => assigneeKey(task.assignee)))];
    const dues =
      s.stage === 'effectiveness_wait' ? [s.effectivenessDueAt] : tasks.map((task) => task.dueAt).concat(s.deadline?.dueAt ?? null);
    s.dueAt = dues.filter((d): d is string => !!d).sort()[0] ?? null;
    upsertSearchAttributes([
      { key: EntityType, value: 'capa' },
      { key: EntityId, value: s.number },
      { key: Stage, value: s.stage },
      { key: Assignees, value: s.pendingAssignees.length ? s.pendingAssignees : null },
      { key: DueAt, value: s.dueAt ? new Date(s.dueAt) : null },
    ]);
  }

  function projection(): CapaProjection {
    return {
      stage: s.stage,
      outcome: s.outcome,
      round: s.round,
      risk: s.risk,
      owner: s.owner,
      assignees: s.pendingAssignees,
      dueAt: s.dueAt,
      mergedInto: s.triageDecision?.mergedInto ?? null,
      initiatedBy: s.initiatedBy,
      closedAt: s.closedAt,
    };
  }

  /**
   * Writes what just changed: the tasks the state had before give way to those it calls for now (`before` is
   * taken before the change), plus the step's own audit event, records and notifications.
   */
  async function step(
    before: ReturnType<typeof wantedTasks>,
    round: number,
    p: Omit<CapaStep, 'capa' | 'rev' | 'projection'>,
    by?: string,
  ) {
    const now = wantedTasks();
    const keyOf = (task: (typeof now)[number], r: number) => `${workflowId}:r${r}:${task.what}:${assigneeKey(task.assignee)}`;
    const nowKeys = new Set(now.map((task) => keyOf(task, s.round)));
    const closing = before
      .filter((task) => !nowKeys.has(keyOf(task, round)))
      .map((task) => ({ prefix: keyOf(task, round), state: 'done' as const, by }));
    s.rev += 1;
    const result = await acts.recordCapaStep({
      capa,
      rev: s.rev,
      projection: projection(),
      ...p,
      // The step's own closings (cancelled, reassigned) come first; what is left of the old tasks is done.
      closeTasks: [...(p.closeTasks ?? []), ...closing],
      openTasks: [
        ...now.map((task) => ({
          key: keyOf(task, s.round),
          kind: task.kind,
          title: task.title,
          assignee: task.assignee,
          dueAt: task.dueAt,
        })),
        ...(p.openTasks ?? []),
      ],
    });
    deliver(result.outboxIds);
    return result;
  }

  /** Changes state synchronously (so a concurrent update sees it at once), then writes the step. */
  async function change(
    mutate: () => void,
    p: (round: number, before: ReturnType<typeof wantedTasks>) => Omit<CapaStep, 'capa' | 'rev' | 'projection'>,
    by?: string,
  ): Promise<CapaState> {
    const before = wantedTasks();
    const round = s.round;
    mutate();
    publish();
    await step(before, round, p(round, before), by);
    return s;
  }

  // ----- validators: refuse without touching history -----
  function requireStage(...allowed: CapaStage[]): void {
    if (allowed.includes(s.stage)) return;
    refuse(FailureType.WrongStage, `${s.number} is ${s.stage}, not ${allowed.join(' or ')}`);
  }
  function requireQa(actor: Actor, what: string): void {
    if (!actor.roles.includes('qa_manager')) refuse(FailureType.Forbidden, `only a QA manager may ${what}`);
  }
  function requireText(value: string | undefined, what: string): void {
    if (!value?.trim()) refuse(FailureType.InvalidInput, `${what} is required`);
  }
  const holds = (ref: AssigneeRef | null, actor: Actor) =>
    !!ref && (ref.kind === 'user' ? ref.userId === actor.userId : actor.roles.includes(ref.role));
  function requireOwner(actor: Actor): void {
    if (!holds(s.owner, actor)) refuse(FailureType.NotAssignee, `only the CAPA owner (${assigneeKey(s.owner!)}) may do this`);
  }
  function openAction(id: string): CapaAction {
    const action = s.plan?.actions.find((a) => a.id === id);
    if (!action) refuse(FailureType.NotFound, `${s.number} has no action ${id} in its current plan`);
    if (action.state !== 'open') refuse(FailureType.DuplicateDecision, `action ${id} is already done`);
    return action;
  }
  const durationsFor = (level: keyof typeof RISK_DURATIONS, extra?: Partial<CapaState['durations']>) => ({
    ...RISK_DURATIONS[level],
    ...input.durations,
    ...extra,
  });
  function setDeadline(stage: CapaStage, duration: string): void {
    const now = Date.now();
    const dueAt = now + durationMs(duration);
    s.deadline = { stage, dueAt: iso(dueAt), reminded: dueAt - durationMs(s.durations.reminderBefore) <= now, escalated: false };
  }
  function startNewRound(endedBy: CapaState['previousRounds'][number]['endedBy']): void {
    s.previousRounds.push({ round: s.round, endedBy, investigation: s.investigation, plan: s.plan, planApproval: s.planApproval });
    s.round += 1;
    if (endedBy !== 'plan_rejected') s.investigation = null;
    s.plan = null;
    s.planApproval = null;
    s.closureContentHash = null;
  }

  setHandler(capaStateQuery, () => s);

  setHandler(
    triageUpdate,
    async (a) => {
      const by = a.actor.username;
      if (a.decision === 'accept') {
        return change(
          () => {
            s.risk = riskOf(a.severity!, a.occurrence!);
            s.owner = a.owner!;
            s.qaManager = { userId: a.actor.userId, username: a.actor.username };
            s.durations = durationsFor(s.risk.level, a.durations);
            s.triageDecision = { decision: 'accept', by, reason: a.reason ?? '', mergedInto: null };
            s.stage = 'containment';
            setDeadline('containment', s.durations.containment);
          },
          (round) => ({
            audit: {
              action: 'capa.triaged',
              actor: a.actor,
              details: { decision: 'accept', risk: s.risk, owner: assigneeKey(s.owner!), dueAt: s.deadline!.dueAt },
            },
            record: { kind: 'triage', round, body: { ...a, actor: undefined }, by },
            notify: [
              {
                to: [s.owner!],
                kind: 'capa.assigned',
                title: `CAPA ${s.number} assigned to you`,
                body: `You own ${s.number} "${s.title}"; contain it by ${s.deadline!.dueAt}.`,
              },
            ],
          }),
          a.actor.userId,
        );
      }
      const mergedInto = a.decision === 'merge' ? a.mergeInto! : null;
      await change(
        () => {
          s.triageDecision = { decision: a.decision, by, reason: a.reason!, mergedInto };
          closeNow(a.decision === 'merge' ? 'merged' : 'unfounded');
        },
        (round) => ({
          audit: {
            action: `capa.${a.decision === 'merge' ? 'merged' : 'unfounded'}`,
            actor: a.actor,
            details: { reason: a.reason, mergedInto },
          },
          record: { kind: 'triage', round, body: { ...a, actor: undefined }, by },
          notify: [
            {
              to: [{ kind: 'user', ...input.initiatedBy }],
              kind: 'capa.closed',
              title: `CAPA ${s.number} closed at triage`,
              body: closedBody(),
            },
          ],
        }),
        a.actor.userId,
      );
      if (mergedInto) {
        try {
          await getExternalWorkflowHandle(workflowIds.capa(mergedInto)).signal(linkSourcesSignal, {
            sources: s.sources,
            by: `capa:${s.number}`,
          });
        } catch {
          // The API checked the target was open; if it ended meanwhile, the merge is recorded here all the same.
        }
      }
      return s;
    },
    {
      validator: (a) => {
        requireStage('triage');
        requireQa(a.actor, 'triage a CAPA');
        if (a.decision === 'accept') {
          for (const [name, v] of [
            ['severity', a.severity],
            ['occurrence', a.occurrence],
          ] as const) {
            if (!Number.isInteger(v) || v! < 1 || v! > 5) refuse(FailureType.InvalidInput, `${name} must be an integer from 1 to 5`);
          }
          if (!a.owner) refuse(FailureType.InvalidInput, 'accepting a CAPA needs an owner');
        } else {
          requireText(a.reason, 'a reason');
          if (a.decision === 'merge' && (!a.mergeInto || a.mergeInto === s.number))
            refuse(FailureType.InvalidInput, 'merge needs another CAPA to merge into');
        }
      },
    },
  );

  function closeNow(outcome: NonNullable<CapaState['outcome']>): void {
    s.stage = 'closed';
    s.outcome = outcome;
    s.deadline = null;
    s.closedAt = iso(Date.now());
    s.reopenUntil = iso(Date.now() + durationMs(input.reopenWindow ?? DEFAULT_REOPEN_WINDOW));
  }
  const closedBody = () => `${s.number} "${s.title}" is closed (${s.outcome}).`;

  setHandler(
    containmentUpdate,
    (a) =>
      change(
        () => {
          s.containment = { summary: a.summary, actions: a.actions, by: a.actor.username, at: iso(Date.now()) };
          s.stage = 'investigation';
          setDeadline('investigation', s.durations.investigation);
        },
        (round) => ({
          audit: {
            action: 'capa.contained',
            actor: a.actor,
            details: { containmentActions: a.actions.length, investigationDueAt: s.deadline!.dueAt },
          },
          record: { kind: 'containment', round, body: { summary: a.summary, actions: a.actions }, by: a.actor.username },
        }),
        a.actor.userId,
      ),
    {
      validator: (a) => {
        requireStage('containment');
        requireOwner(a.actor);
        requireText(a.summary, 'a containment summary');
      },
    },
  );

  setHandler(
    investigationUpdate,
    (a) =>
      change(
        () => {
          s.investigation = { method: a.method, rootCause: a.rootCause, findings: a.findings, by: a.actor.username, at: iso(Date.now()) };
        },
        (round) => ({
          audit: { action: 'capa.root_cause_recorded', actor: a.actor, details: { method: a.method } },
          record: {
            kind: 'investigation',
            round,
            body: { method: a.method, rootCause: a.rootCause, findings: a.findings },
            by: a.actor.username,
          },
        }),
      ),
    {
      validator: (a) => {
        requireStage('investigation');
        requireOwner(a.actor);
        requireText(a.rootCause, 'a root cause');
        requireText(a.findings, 'findings');
      },
    },
  );

  setHandler(
    submitPlanUpdate,
    (a) =>
      change(
        () => {
          const actions: CapaAction[] = a.actions.map((x, i) => ({
            id: `A${i + 1}`,
            type: x.type,
            description: x.description,
            owner: x.owner,
            dueAt: iso(Date.parse(x.dueAt)),
            state: 'open',
            extensions: 0,
            extensionRequest: null,
            extensionRequests: 0,
            completedBy: null,
            completedAt: null,
            evidence: null,
            reminded: false,
            escalated: false,
          }));
          const criteria = a.criteria.map((c, i) => ({ id: `C${i + 1}`, description: c.description, measure: c.measure }));
          const contentHash = contentHashOf({
            number: s.number,
            round: s.round,
            actions: actions.map((x) => ({
              id: x.id,
              type: x.type,
              description: x.description,
              owner: assigneeKey(x.owner),
              dueAt: x.dueAt,
            })),
            criteria,
          });
          s.plan = { actions, criteria, contentHash, submittedBy: a.actor.username, submittedAt: iso(Date.now()) };
          s.stage = 'plan_approval';
          s.deadline = null;
        },
        (round) => ({
          audit: {
            action: 'capa.plan_submitted',
            actor: a.actor,
            details: { actions: a.actions.length, criteria: a.criteria.length, contentHash: s.plan!.contentHash },
          },
          record: {
            kind: 'plan',
            round,
            body: {
              actions: s.plan!.actions.map(({ reminded: _r, escalated: _e, ...x }) => x),
              criteria: s.plan!.criteria,
              contentHash: s.plan!.contentHash,
            },
            by: a.actor.username,
          },
          notify: [
            {
              to: [QA],
              kind: 'capa.plan_submitted',
              title: `Plan to approve: ${s.number}`,
              body: `The action plan of ${s.number} "${s.title}" waits for QA approval.`,
            },
          ],
        }),
        a.actor.userId,
      ),
    {
      validator: (a) => {
        requireStage('investigation');
        requireOwner(a.actor);
        if (!s.investigation) refuse(FailureType.WrongStage, 'record the root cause before submitting a plan');
        if (!a.actions.length) refuse(FailureType.InvalidInput, 'a plan needs at least one action');
        if (!a.criteria.length) refuse(FailureType.InvalidInput, 'effectiveness criteria must be defined before implementation');
        for (const [i, x] of a.actions.entries()) {
          requireText(x.description, `actions[${i}].description`);
          const due = Date.parse(x.dueAt);
          if (Number.isNaN(due) || due <= Date.now()) refuse(FailureType.InvalidInput, `actions[${i}].dueAt must be in the future`);
        }
        for (const [i, c] of a.criteria.entries()) requireText(c.measure, `criteria[${i}].measure`);
      },
    },
  );

  setHandler(
    decidePlanUpdate,
    (a) => {
      if (a.decision === 'reject') {
        return change(
          () => {
            startNewRound('plan_rejected');
            s.stage = 'investigation';
            setDeadline('investigation', s.durations.investigation);
          },
          (round) => ({
            audit: { action: 'capa.plan_rejected', actor: a.actor, details: { comment: a.comment, rejectedRound: round } },
            notify: [
              {
                to: [s.owner!],
                kind: 'capa.plan_rejected',
                title: `Plan rejected: ${s.number}`,
                body: `QA rejected the plan of ${s.number}: ${a.comment}`,
              },
            ],
          }),
          a.actor.userId,
        );
      }
      return change(
        () => {
          const now = Date.now();
          s.planApproval = {
            username: a.actor.username,
            printedName: a.actor.printedName,
            meaning: a.signature!.meaning,
            signedAt: a.signature!.signedAt,
            contentHash: a.signature!.contentHash,
          };
          for (const x of s.plan!.actions) x.reminded = Date.parse(x.dueAt) - durationMs(s.durations.reminderBefore) <= now;
          s.stage = 'implementation';
        },
        (round) => ({
          audit: { action: 'capa.plan_approved', actor: a.actor, details: { contentHash: s.plan!.contentHash } },
          signature: {
            round,
            stage: 'plan_approval',
            stageIndex: CAPA_STAGES.indexOf('plan_approval'),
            actor: a.actor,
            signature: a.signature!,
          },
          actions: s.plan!.actions.map((x) => actionRow(x, round)),
          notify: s.plan!.actions.map((x) => ({
            to: [x.owner],
            kind: 'capa.action_assigned',
            title: `CAPA action ${s.number}/${x.id}`,
            body: `${x.type} action ${x.id} of ${s.number}: ${x.description} — due ${x.dueAt}.`,
          })),
        }),
        a.actor.userId,
      );
    },
    {
      validator: (a) => {
        requireStage('plan_approval');
        requireQa(a.actor, 'approve a CAPA plan');
        if (holds(s.owner, a.actor) && s.owner?.kind === 'user')
          refuse(FailureType.Forbidden, 'the CAPA owner cannot approve their own plan');
        if (a.decision === 'approve') {
          if (!a.signature) refuse(FailureType.InvalidInput, 'plan approval must be signed');
          if (a.signature.contentHash !== s.plan!.contentHash)
            refuse(FailureType.StaleContentHash, `the plan changed since it was read: its hash is ${s.plan!.contentHash}`);
        } else requireText(a.comment, 'a comment');
      },
    },
  );

  const actionRow = (x: CapaAction, round: number) => ({
    round,
    id: x.id,
    type: x.type,
    description: x.description,
    owner: x.owner,
    dueAt: x.dueAt,
    state: x.state,
    extensions: x.extensions,
    completedBy: x.completedBy?.username ?? null,
    completedAt: x.completedAt,
    evidence: x.evidence,
  });

  setHandler(
    completeActionUpdate,
    (a) =>
      change(
        () => {
          const x = openAction(a.actionId);
          x.state = 'done';
          x.completedBy = { userId: a.actor.userId, username: a.actor.username };
          x.completedAt = iso(Date.now());
          x.evidence = a.evidence;
          x.extensionRequest = null;
          if (!openActions().length) {
            s.stage = 'effectiveness_wait';
            s.effectivenessDueAt = iso(Date.now() + durationMs(s.durations.effectivenessWait));
          }
        },
        (round) => ({
          audit: {
            action: 'capa.action_completed',
            actor: a.actor,
            details: {
              actionId: a.actionId,
              attachments: a.evidence.attachments,
              ...(s.stage === 'effectiveness_wait' ? { effectivenessDueAt: s.effectivenessDueAt } : {}),
            },
          },
          actions: [
            actionRow(
              s.plan!.actions.find((x) => x.id === a.actionId)!,
              round,
            ),
          ],
          record: { kind: 'action_evidence', round, body: { actionId: a.actionId, ...a.evidence }, by: a.actor.username },
        }),
        a.actor.userId,
      ),
    {
      validator: (a) => {
        requireStage('implementation');
        const x = openAction(a.actionId);
        if (!holds(x.owner, a.actor)) refuse(FailureType.NotAssignee, `action ${x.id} is held by ${assigneeKey(x.owner)}`);
        requireText(a.evidence?.text, 'evidence');
      },
    },
  );

  setHandler(
    requestExtensionUpdate,
    (a) =>
      change(
        () => {
          const x = openAction(a.actionId);
          x.extensionRequests += 1;
          x.extensionRequest = { dueAt: iso(Date.parse(a.dueAt)), reason: a.reason, by: a.actor.username, at: iso(Date.now()) };
        },
        () => ({
          audit: {
            action: 'capa.extension_requested',
            actor: a.actor,
            details: { actionId: a.actionId, dueAt: a.dueAt, reason: a.reason },
          },
          notify: [
            {
              to: [escalateTo()],
              kind: 'capa.extension_requested',
              title: `Extension requested: ${s.number}/${a.actionId}`,
              body: `${a.actor.printedName} asks to move ${a.actionId} of ${s.number} to ${a.dueAt}: ${a.reason}`,
            },
          ],
        }),
      ),
    {
      validator: (a) => {
        requireStage('implementation');
        const x = openAction(a.actionId);
        if (!holds(x.owner, a.actor)) refuse(FailureType.NotAssignee, `only the owner of ${x.id} may ask for more time`);
        if (x.extensionRequest) refuse(FailureType.DuplicateDecision, `an extension of ${x.id} is already waiting for QA`);
        if (x.extensions >= s.maxExtensions)
          refuse(FailureType.ExtensionLimit, `${x.id} has had its ${s.maxExtensions} extension(s); no more are allowed`);
        requireText(a.reason, 'a reason');
        const due = Date.parse(a.dueAt);
        if (Number.isNaN(due) || due <= Date.parse(x.dueAt))
          refuse(FailureType.InvalidInput, `the new due date must be later than ${x.dueAt}`);
      },
    },
  );

  setHandler(
    decideExtensionUpdate,
    (a) =>
      change(
        () => {
          const x = openAction(a.actionId);
          if (a.approve) {
            x.dueAt = x.extensionRequest!.dueAt;
            x.extensions += 1;
            x.reminded = Date.parse(x.dueAt) - durationMs(s.durations.reminderBefore) <= Date.now();
            x.escalated = false;
          }
          x.extensionRequest = null;
        },
        (round) => {
          const x = s.plan!.actions.find((y) => y.id === a.actionId)!;
          return {
            audit: {
              action: a.approve ? 'capa.extension_granted' : 'capa.extension_refused',
              actor: a.actor,
              details: { actionId: x.id, dueAt: x.dueAt, extensions: x.extensions, reason: a.reason },
            },
            actions: [actionRow(x, round)],
            retimeTasks: [{ prefix: `${base()}:action:${x.id}:`, dueAt: x.dueAt }],
            notify: [
              {
                to: [x.owner],
                kind: 'capa.extension_decided',
                title: `Extension ${a.approve ? 'granted' : 'refused'}: ${s.number}/${x.id}`,
                body: `${x.id} of ${s.number} is due ${x.dueAt}: ${a.reason}`,
              },
            ],
          };
        },
        a.actor.userId,
      ),
    {
      validator: (a) => {
        requireStage('implementation');
        requireQa(a.actor, 'decide an extension');
        const x = openAction(a.actionId);
        if (!x.extensionRequest) refuse(FailureType.WrongStage, `no extension of ${x.id} is waiting for a decision`);
        if (holds(x.owner, a.actor) && x.owner.kind === 'user')
          refuse(FailureType.Forbidden, 'an action owner cannot grant their own extension');
        if (a.approve && x.extensions >= s.maxExtensions)
          refuse(FailureType.ExtensionLimit, `${x.id} has had its ${s.maxExtensions} extension(s)`);
        requireText(a.reason, 'a reason');
      },
    },
  );

  setHandler(
    effectivenessUpdate,
    (a: EffectivenessArgs) => {
      const passed = a.results.every((r) => r.met);
      const record = { round: s.round, verifier: a.actor.username, passed, results: a.results, comment: a.comment, at: iso(Date.now()) };
      return change(
        () => {
          s.effectiveness.push(record);
          if (passed) {
            s.closureContentHash = contentHashOf({
              number: s.number,
              round: s.round,
              plan: s.plan!.contentHash,
              actions: s.plan!.actions.map((x) => ({ id: x.id, completedBy: x.completedBy?.username, evidence: x.evidence })),
              effectiveness: record,
            });
          } else {
            startNewRound('effectiveness_failed');
            s.stage = 'investigation';
            s.effectivenessDueAt = null;
            setDeadline('investigation', s.durations.investigation);
          }
        },
        (round) => ({
          audit: {
            action: passed ? 'capa.effectiveness_passed' : 'capa.effectiveness_failed',
            actor: a.actor,
            details: { verifiedRound: round, results: a.results.map((r) => ({ criterionId: r.criterionId, met: r.met })) },
          },
          record: { kind: 'effectiveness', round, body: record, by: a.actor.username },
          notify: passed
            ? [
                {
                  to: [QA],
                  kind: 'capa.ready_to_close',
                  title: `Ready to close: ${s.number}`,
                  body: `${s.number} "${s.title}" passed its effectiveness check and waits for signed closure.`,
                },
              ]
            : [
                {
                  to: [s.owner!],
                  kind: 'capa.effectiveness_failed',
                  title: `Not effective: ${s.number}`,
                  body: `${s.number} failed its effectiveness check and is back in investigation: ${a.comment}`,
                },
              ],
        }),
        a.actor.userId,
      );
    },
    {
      validator: (a: EffectivenessArgs) => {
        requireStage('effectiveness_review');
        if (latestPassed()) refuse(FailureType.DuplicateDecision, 'effectiveness has already been verified; the CAPA waits for closure');
        if (!a.actor.roles.some((r) => r === 'qa_manager' || r === 'lab_director'))
          refuse(FailureType.Forbidden, 'effectiveness is verified by a QA manager or lab director');
        const implemented = s.plan!.actions.filter(
          (x) => x.completedBy?.userId === a.actor.userId || (x.owner.kind === 'user' && x.owner.userId === a.actor.userId),
        );
        if (implemented.length)
          refuse(
            FailureType.Forbidden,
            `${a.actor.username} implemented ${implemented.map((x) => x.id).join(', ')} and cannot verify their own work`,
          );
        const missing = s.plan!.criteria.filter((c) => !a.results.some((r) => r.criterionId === c.id));
        if (missing.length) refuse(FailureType.InvalidInput, `results are missing for ${missing.map((c) => c.id).join(', ')}`);
        const unknown = a.results.filter((r) => !s.plan!.criteria.some((c) => c.id === r.criterionId));
        if (unknown.length) refuse(FailureType.InvalidInput, `no criterion ${unknown.map((r) => r.criterionId).join(', ')}`);
        for (const r of a.results) requireText(r.evidence, `evidence for ${r.criterionId}`);
      },
    },
  );

  setHandler(
    closeCapaUpdate,
    async (a) => {
      await change(
        () => {
          s.closure = {
            username: a.actor.username,
            printedName: a.actor.printedName,
            meaning: a.signature!.meaning,
            signedAt: a.signature!.signedAt,
            contentHash: a.signature!.contentHash,
            comment: a.comment ?? '',
            ...(a.supplierAction ? { supplierAction: a.supplierAction } : {}),
          };
          closeNow('effective');
        },
        (round) => ({
          audit: {
            action: 'capa.closed',
            actor: a.actor,
            details: {
              outcome: 'effective',
              comment: a.comment ?? null,
              ...(a.supplierAction ? { supplierAction: a.supplierAction, suppliers: supplierSources() } : {}),
            },
          },
          signature: { round, stage: 'closed', stageIndex: CAPA_STAGES.indexOf('closed'), actor: a.actor, signature: a.signature! },
          notify: [
            {
              to: [s.owner!, { kind: 'user', ...input.initiatedBy }],
              kind: 'capa.closed',
              title: `CAPA ${s.number} closed`,
              body: closedBody(),
            },
          ],
        }),
        a.actor.userId,
      );
      if (a.supplierAction && patched('capa-supplier-action')) await decideOnSuppliers(a.supplierAction, a);
      return s;
    },
    {
      validator: (a) => {
        requireQa(a.actor, 'close a CAPA');
        if (s.stage === 'closed') refuse(FailureType.WrongStage, `${s.number} is already closed`);
        const open = openActions();
        if (open.length)
          refuse(FailureType.ActionsOpen, `${s.number} cannot close while actions are open: ${open.map((x) => x.id).join(', ')}`);
        if (s.stage !== 'effectiveness_review' || !latestPassed())
          refuse(FailureType.EffectivenessMissing, `${s.number} has no passing effectiveness check to close on (it is ${s.stage})`);
        if (!a.signature) refuse(FailureType.InvalidInput, 'closure must be signed');
        if (a.signature.contentHash !== s.closureContentHash)
          refuse(FailureType.StaleContentHash, `the closure record changed since it was read: its hash is ${s.closureContentHash}`);
        if (a.supplierAction && !supplierSources().length)
          refuse(FailureType.InvalidInput, `${s.number} names no supplier to ${a.supplierAction}`);
      },
    },
  );

  const supplierSources = () => s.sources.filter((src) => src.type === 'supplier').map((src) => src.id);

  /**
   * QA's verdict on the suppliers this CAPA names goes to each one's qualification run (started if it has none),
   * which records it and writes the supplier's hold status to the ERP, as when QA decides there directly.
   */
  async function decideOnSuppliers(decision: SupplierDecision, a: CloseArgs): Promise<void> {
    const via = `capa:${s.number}:closure:${s.reopenings.length + 1}`;
    const reason = `CAPA ${s.number} "${s.title}" closed${a.comment ? `: ${a.comment}` : ''}`;
    for (const { supplier, status } of await acts.supplierQualificationStatuses({ suppliers: supplierSources() })) {
      if (status === 'disqualified') continue;
      const qualification = workflowIds.supplierQualification(supplier);
      try {
        try {
          await startChild<typeof supplierQualificationWorkflow>('supplierQualificationWorkflow', {
            workflowId: qualification,
            args: [{ supplier, status }],
            parentClosePolicy: ParentClosePolicy.ABANDON,
            workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
          });
        } catch (err) {
          if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        }
        await getExternalWorkflowHandle(qualification).signal(processDecisionSignal, { decision, actor: a.actor, reason, via });
      } catch (err) {
        // The closure stands (the API checked each supplier could take the verdict); a run that ended meanwhile is logged.
        log.warn('supplier verdict not delivered', { supplier, decision, error: String(err) });
      }
    }
  }

  setHandler(
    cancelCapaUpdate,
    (a) =>
      change(
        () => {
          s.cancellation = { by: a.actor.username, reason: a.reason, at: iso(Date.now()) };
          s.stage = 'cancelled';
          s.deadline = null;
          s.effectivenessDueAt = null;
        },
        () => ({
          audit: { action: 'capa.cancelled', actor: a.actor, details: { reason: a.reason } },
          closeTasks: [{ prefix: `${workflowId}:`, state: 'cancelled' }],
          actions: (s.plan?.actions ?? [])
            .filter((x) => x.state === 'open')
            .map((x) => ({ ...actionRow(x, s.round), state: 'superseded' as const })),
          notify: s.owner
            ? [
                {
                  to: [s.owner],
                  kind: 'capa.cancelled',
                  title: `CAPA ${s.number} cancelled`,
                  body: `${s.number} "${s.title}" was cancelled: ${a.reason}`,
                },
              ]
            : [],
        }),
      ),
    {
      validator: (a) => {
        if (FINISHED.includes(s.stage)) refuse(FailureType.WrongStage, `${s.number} is ${s.stage}; only an open CAPA can be cancelled`);
        requireQa(a.actor, 'cancel a CAPA');
        requireText(a.reason, 'a reason');
      },
    },
  );

  setHandler(
    reopenCapaUpdate,
    (a) =>
      change(
        () => {
          s.reopenings.push({ by: a.actor.username, reason: a.reason, at: iso(Date.now()), closedAt: s.closedAt });
          const toTriage = s.outcome !== 'effective';
          s.closedAt = null;
          s.closure = null;
          s.outcome = null;
          s.reopenUntil = null;
          s.effectivenessDueAt = null;
          startNewRound('reopened');
          if (toTriage) {
            s.triageDecision = null;
            s.stage = 'triage';
          } else {
            s.stage = 'investigation';
            setDeadline('investigation', s.durations.investigation);
          }
        },
        () => ({
          audit: {
            action: 'capa.reopened',
            actor: a.actor,
            details: { reason: a.reason, previousClosedAt: s.reopenings.at(-1)!.closedAt },
          },
          notify: [
            {
              to: [s.owner ?? QA],
              kind: 'capa.reopened',
              title: `CAPA ${s.number} reopened`,
              body: `${s.number} "${s.title}" was reopened: ${a.reason}`,
            },
          ],
        }),
        a.actor.userId,
      ),
    {
      validator: (a) => {
        requireStage('closed');
        requireQa(a.actor, 'reopen a CAPA');
        requireText(a.reason, 'a reason');
      },
    },
  );

  async function link(a: LinkSourcesArgs): Promise<CapaState> {
    const added = a.sources.filter((src) => !s.sources.some((x) => sourceKey(x) === sourceKey(src)));
    if (!added.length || FINISHED.includes(s.stage)) return s;
    return change(
      () => s.sources.push(...dedupe(added)),
      () => ({
        audit: { action: 'capa.sources_linked', by: a.by, details: { sources: added.map(sourceKey) } },
        sources: { sources: added, by: a.by },
      }),
    );
  }
  setHandler(linkSourcesUpdate, link, {
    validator: (a) => {
      if (FINISHED.includes(s.stage)) refuse(FailureType.WrongStage, `${s.number} is ${s.stage}; link the source to an open CAPA`);
      if (!a.sources.length) refuse(FailureType.InvalidInput, 'name at least one source');
    },
  });
  setHandler(linkSourcesSignal, async (a) => void (await link(a)));

  /** Whatever a deactivated user holds in this CAPA goes to the triaging QA manager (or QA managers as a role). */
  async function reassignFrom(userId: string, username: string): Promise<void> {
    const from = `user:${username}`;
    const moved: string[] = [];
    await change(
      () => {
        if (s.qaManager?.userId === userId) s.qaManager = null;
        const to = escalateTo();
        const at = iso(Date.now());
        const held = (ref: AssigneeRef | null) => ref?.kind === 'user' && ref.userId === userId;
        if (held(s.owner)) {
          s.owner = to;
          moved.push('owner');
          s.reassignments.push({ from, to: assigneeKey(to), what: 'owner', at });
        }
        for (const x of openActions().filter((y) => held(y.owner))) {
          x.owner = to;
          moved.push(x.id);
          s.reassignments.push({ from, to: assigneeKey(to), what: `action ${x.id}`, at });
        }
      },
      (round, before) => ({
        closeTasks: before
          .filter((task) => task.assignee.kind === 'user' && task.assignee.userId === userId)
          .map((task) => ({ prefix: `${workflowId}:r${round}:${task.what}:${assigneeKey(task.assignee)}`, state: 'reassigned' as const })),
        audit: {
          action: 'capa.reassigned',
          by: 'system:capa',
          details: { from, to: assigneeKey(escalateTo()), what: moved, reason: 'user deactivated' },
        },
        actions: openActions().map((x) => actionRow(x, round)),
        notify: moved.length
          ? [
              {
                to: [escalateTo()],
                kind: 'capa.reassigned',
                title: `CAPA ${s.number} reassigned to you`,
                body: `${username} was deactivated; ${moved.join(', ')} of ${s.number} now rest with you.`,
              },
            ]
          : [],
      }),
    );
  }
  setHandler(userDeactivatedSignal, async ({ userId, username }) => {
    const holdsSomething =
      (s.owner?.kind === 'user' && s.owner.userId === userId) ||
      openActions().some((x) => x.owner.kind === 'user' && x.owner.userId === userId);
    if (holdsSomething && !FINISHED.includes(s.stage)) await reassignFrom(userId, username);
  });

  // ----- the process: deadlines, reminders, escalations, the effectiveness wait, the reopen window -----
  interface Due {
    what: string;
    holder: AssigneeRef;
    dueAt: string;
    flags: { reminded: boolean; escalated: boolean };
  }
  function dues(): Due[] {
    if ((s.stage === 'containment' || s.stage === 'investigation') && s.deadline && s.owner) {
      return [{ what: s.stage, holder: s.owner, dueAt: s.deadline.dueAt, flags: s.deadline }];
    }
    if (s.stage === 'implementation')
      return openActions().map((x) => ({ what: `action ${x.id}`, holder: x.owner, dueAt: x.dueAt, flags: x }));
    return [];
  }

  async function remind(d: Due, kind: 'reminder' | 'escalation'): Promise<void> {
    const round = s.round;
    const before = wantedTasks();
    if (kind === 'reminder') d.flags.reminded = true;
    else d.flags.reminded = d.flags.escalated = true;
    publish();
    const { inactive } = await step(before, round, {
      audit: {
        action: kind === 'reminder' ? 'capa.reminder' : 'capa.overdue',
        details: { what: d.what, holder: assigneeKey(d.holder), dueAt: d.dueAt },
      },
      notify: [
        kind === 'reminder'
          ? {
              to: [d.holder],
              kind: 'capa.reminder',
              title: `Due ${d.dueAt}: ${s.number} ${d.what}`,
              body: `${d.what} of ${s.number} "${s.title}" is due at ${d.dueAt}.`,
            }
          : {
              to: [d.holder, escalateTo()],
              kind: 'capa.overdue',
              title: `Overdue: ${s.number} ${d.what}`,
              body: `${d.what} of ${s.number} "${s.title}" was due at ${d.dueAt} (${assigneeKey(d.holder)}).`,
            },
      ],
      checkActive: d.holder.kind === 'user' ? [d.holder.userId] : [],
    });
    // A holder deactivated without the run being told is found here, and their work handed on.
    if (inactive.length && d.holder.kind === 'user') await reassignFrom(d.holder.userId, d.holder.username);
  }

  async function initiate(): Promise<void> {
    await change(
      () => {
        s.stage = 'triage';
      },
      (round) => ({
        audit: {
          action: 'capa.initiated',
          actor: undefined,
          by: input.initiatedBy.username,
          details: { title: s.title, sources: s.sources.map(sourceKey) },
        },
        sources: { sources: s.sources, by: input.initiatedBy.username },
        record: {
          kind: 'initiation',
          round,
          body: { title: s.title, description: s.description, sources: s.sources },
          by: input.initiatedBy.username,
        },
        notify: [
          {
            to: [QA],
            kind: 'capa.triage',
            title: `New CAPA to triage: ${s.number}`,
            body: `${s.number} "${s.title}" was raised by ${input.initiatedBy.username}.`,
          },
        ],
      }),
    );
  }

  async function run(): Promise<CapaState> {
    publish();
    if (!input.resume) await initiate();
    for (;;) {
      if (s.stage === 'cancelled') break;
      const now = Date.now();
      const due = dues().find(
        (d) =>
          (!d.flags.escalated && now >= Date.parse(d.dueAt)) ||
          (!d.flags.reminded && now >= Date.parse(d.dueAt) - durationMs(s.durations.reminderBefore)),
      );
      if (due) {
        await remind(due, !due.flags.escalated && now >= Date.parse(due.dueAt) ? 'escalation' : 'reminder');
        continue;
      }
      if (s.stage === 'effectiveness_wait' && now >= Date.parse(s.effectivenessDueAt!)) {
        await change(
          () => {
            s.stage = 'effectiveness_review';
          },
          () => ({
            audit: { action: 'capa.effectiveness_due', details: { criteria: s.plan!.criteria.map((c) => c.id) } },
            notify: [
              {
                to: [QA],
                kind: 'capa.effectiveness_due',
                title: `Verify effectiveness: ${s.number}`,
                body: `The waiting period of ${s.number} "${s.title}" is over; record the results against its criteria.`,
              },
            ],
          }),
        );
        continue;
      }
      if (s.stage === 'closed' && s.reopenUntil && now >= Date.parse(s.reopenUntil)) break;

      const info = workflowInfo();
      if (info.continueAsNewSuggested || (input.continueAsNewAfter && info.historyLength >= input.continueAsNewAfter)) {
        await condition(allHandlersFinished);
        await condition(() => pendingMail === 0);
        await continueAsNew<typeof capaWorkflow>({
          ...input,
          resume: { snapshot: s, continuedRuns: (input.resume?.continuedRuns ?? 0) + 1 },
        });
      }

      const wakes = dues().flatMap((d) => [
        ...(d.flags.reminded ? [] : [Date.parse(d.dueAt) - durationMs(s.durations.reminderBefore)]),
        ...(d.flags.escalated ? [] : [Date.parse(d.dueAt)]),
      ]);
      if (s.stage === 'effectiveness_wait') wakes.push(Date.parse(s.effectivenessDueAt!));
      if (s.stage === 'closed' && s.reopenUntil) wakes.push(Date.parse(s.reopenUntil));
      const seen = changes;
      const woken = () => changes !== seen;
      if (wakes.length) await condition(woken, Math.max(Math.min(...wakes) - Date.now(), 1));
      else await condition(woken);
    }
    await condition(allHandlersFinished);
    await condition(() => pendingMail === 0);
    return s;
  }

  try {
    return await run();
  } catch (err) {
    if (!isCancellation(err)) throw err;
    // An operator cancelled the run: leave the record consistent before ending.
    await CancellationScope.nonCancellable(async () => {
      if (!FINISHED.includes(s.stage)) {
        await change(
          () => {
            s.cancellation = { by: 'system:operator', reason: 'the run was cancelled by an administrator', at: iso(Date.now()) };
            s.stage = 'cancelled';
            s.deadline = null;
          },
          () => ({
            audit: { action: 'capa.cancelled', details: { reason: 'the run was cancelled by an administrator' } },
            closeTasks: [{ prefix: `${workflowId}:`, state: 'cancelled' }],
          }),
        );
      }
    });
    throw err;
  }
}
