import { condition, patched, upsertSearchAttributes } from '@temporalio/workflow';
import type { CapaActionRow, CapaProjection, CapaProof, CapaStep } from '../../activities/capa';
import type { AssigneeRef } from '../../common/assignees';
import {
  DEFAULT_MAX_EXTENSIONS,
  RISK_DURATIONS,
  sourceKey,
  type CapaAction,
  type CapaInput,
  type CapaOutcome,
  type CapaRound,
  type CapaSource,
  type CapaState,
} from '../../common/capa';
import { Assignees, DueAt, EntityId, EntityType, Stage } from '../../common/search-attributes';
import { OutboxDeliveries } from '../lib/outbox';
import { grantRefusal, passOnRefusal } from '../lib/proof';
import { startNoticeRuns } from '../lib/notices';
import { db } from '../lib/proxies';
import { iso } from '../lib/time';
import { earliestDue, reopenUntil, stageDeadline } from './deadlines';
import { assigneesOf, taskKey, wantedTasks, type WantedTask } from './tasks';

/** Overdue stages and actions write an urgent notice whose run this run starts. */
const URGENT_OVERDUE_PATCH = 'urgent-capa-overdue';

/** What a transition writes besides the projection, the tasks and the revision, which every step carries. */
export type StepFacts = Omit<CapaStep, 'capa' | 'rev' | 'projection' | 'proof'>;

/** Sources without repeats (the same type and ID named twice counts once). */
export function dedupeSources(sources: CapaSource[]): CapaSource[] {
  const seen = new Set<string>();
  return sources.filter((src) => !seen.has(sourceKey(src)) && seen.add(sourceKey(src)));
}

export function initialState(input: CapaInput, workflowId: string): CapaState {
  return {
    workflowId,
    number: input.number,
    title: input.title,
    description: input.description,
    rev: 0,
    stage: 'initiated',
    outcome: null,
    round: 1,
    sources: dedupeSources(input.sources),
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
}

/** An action as its row in capa_actions shows it, in the given round. */
export const actionRow = (x: CapaAction, round: number): CapaActionRow => ({
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

/**
 * One CAPA's state and how a change to it is recorded. The transitions live in stages/, one file per stage group;
 * each changes the state through `change`: synchronously (so a concurrent Update's validator sees the new state at
 * once), then the search attributes, then one written step in which the tasks the state had give way to those it
 * calls for now, with the step's audit event, records and notifications.
 */
export class CapaCase {
  readonly state: CapaState;
  readonly outbox = new OutboxDeliveries();
  /** Counts published changes: the run's wait ends when it moves. */
  changes = 0;
  /**
   * Runs started with action grants take one transition at a time, so a transition whose proof is refused can give
   * back exactly what it took; the closure hash also covers the sources and a verdict names its suppliers. Runs
   * started before keep their old ways (and replay as recorded).
   */
  readonly grants: boolean;
  private busy = false;

  constructor(
    readonly input: CapaInput,
    readonly workflowId: string,
  ) {
    this.state = input.resume?.snapshot ?? initialState(input, workflowId);
    this.grants = patched('capa-action-grants');
  }

  /** No transition is in flight: what the state says is written (or was never taken). */
  get idle(): boolean {
    return !this.busy;
  }

  /**
   * Runs one transition after the one in progress has been written (or refused); `recheck` judges the request again
   * against the state as it then stands, since the state the validator saw may have been given back meanwhile.
   */
  async serially<T>(work: () => Promise<T>, recheck?: () => void): Promise<T> {
    if (!this.grants) return work();
    while (this.busy) await condition(() => !this.busy);
    this.busy = true;
    try {
      recheck?.();
      return await work();
    } finally {
      this.busy = false;
    }
  }

  publish(): void {
    const s = this.state;
    this.changes += 1;
    const tasks = wantedTasks(s);
    s.pendingAssignees = assigneesOf(tasks);
    s.dueAt = earliestDue(s, tasks);
    upsertSearchAttributes([
      { key: EntityType, value: 'capa' },
      { key: EntityId, value: s.number },
      { key: Stage, value: s.stage },
      { key: Assignees, value: s.pendingAssignees.length ? s.pendingAssignees : null },
      { key: DueAt, value: s.dueAt ? new Date(s.dueAt) : null },
    ]);
  }

  private projection(): CapaProjection {
    const s = this.state;
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

  /** Writes a step; `before` are the tasks the state called for before the change, in the round it was then. */
  async record(before: WantedTask[], round: number, facts: StepFacts, by?: string, proof?: CapaProof) {
    const s = this.state;
    const now = wantedTasks(s);
    const nowKeys = new Set(now.map((task) => taskKey(this.workflowId, s.round, task)));
    const closing = before
      .filter((task) => !nowKeys.has(taskKey(this.workflowId, round, task)))
      .map((task) => ({ prefix: taskKey(this.workflowId, round, task), state: 'done' as const, by }));
    s.rev += 1;
    const result = await db.recordCapaStep({
      capa: { workflowId: this.workflowId, number: s.number, title: s.title },
      rev: s.rev,
      projection: this.projection(),
      ...facts,
      // The step's own closings (cancelled, reassigned) come first; what is left of the old tasks is done.
      closeTasks: [...(facts.closeTasks ?? []), ...closing],
      openTasks: [...now.map((task) => ({ key: taskKey(this.workflowId, s.round, task), ...task })), ...(facts.openTasks ?? [])],
      ...(proof ? { proof } : {}),
    });
    this.outbox.deliver(result.outboxIds);
    // An overdue stage or action is an urgent notice: its run sends SMS and Slack and escalates.
    if (result.noticeIds?.length && patched(URGENT_OVERDUE_PATCH)) await startNoticeRuns(result.noticeIds);
    return result;
  }

  /**
   * Changes the state, publishes it and writes the step that `describe` states (from the round before the change).
   * With `proof` (a person's grant, or what a signal claims), the step is written only if the proof holds; when it
   * is refused nothing was written, the state is given back as it was, and the request is refused.
   */
  async change(
    mutate: () => void,
    describe: (round: number, before: WantedTask[]) => StepFacts,
    by?: string,
    proof?: CapaProof,
  ): Promise<CapaState> {
    const before = wantedTasks(this.state);
    const round = this.state.round;
    const kept = proof ? (JSON.parse(JSON.stringify(this.state)) as CapaState) : null;
    mutate();
    this.publish();
    try {
      await this.record(before, round, describe(round, before), by, proof);
    } catch (err) {
      const refusal = grantRefusal(err);
      if (!refusal || !kept) throw err;
      this.restore(kept);
      passOnRefusal(refusal);
    }
    return this.state;
  }

  /** Puts the state back as it was kept (the same object: handlers and the query hold it). */
  private restore(kept: CapaState): void {
    const s = this.state as unknown as Record<string, unknown>;
    for (const key of Object.keys(s)) if (!(key in kept)) delete s[key];
    Object.assign(s, kept);
    this.publish();
  }

  /** Sets the stage's deadline from now and answers its due date. */
  setDeadline(stage: 'containment' | 'investigation'): string {
    const s = this.state;
    s.deadline = stageDeadline(stage, s.durations[stage], s.durations.reminderBefore, Date.now());
    return s.deadline.dueAt;
  }

  /** Ends the current round (kept in previousRounds) and starts the next without a plan. */
  startNewRound(endedBy: CapaRound['endedBy']): void {
    const s = this.state;
    s.previousRounds.push({ round: s.round, endedBy, investigation: s.investigation, plan: s.plan, planApproval: s.planApproval });
    s.round += 1;
    if (endedBy !== 'plan_rejected') s.investigation = null;
    s.plan = null;
    s.planApproval = null;
    s.closureContentHash = null;
  }

  closeNow(outcome: CapaOutcome): void {
    const s = this.state;
    s.stage = 'closed';
    s.outcome = outcome;
    s.deadline = null;
    s.closedAt = iso(Date.now());
    s.reopenUntil = reopenUntil(Date.now(), this.input.reopenWindow);
  }

  get initiator(): AssigneeRef {
    return { kind: 'user', ...this.input.initiatedBy };
  }
}
