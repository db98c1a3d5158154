import { condition, upsertSearchAttributes } from '@temporalio/workflow';
import type { TrainingRef } from '../../activities';
import type { DeactivatedUser } from '../../common/deactivation';
import type { AssignmentEnding, AssignmentState, SignOffArgs, TrainingAssignmentInput } from '../../common/training';
import { Assignees, DueAt, EntityId, EntityType, Stage } from '../../common/search-attributes';
import { OutboxDeliveries } from '../lib/outbox';
import { grantRefusal, undoneIfRefused } from '../lib/proof';
import { db } from '../lib/proxies';
import { reminderAt, until } from './deadlines';
import type { AssignmentFacts } from './validators';

/**
 * One person's read-and-understood task on one effective version: opened when Postgres bears it out, reminded
 * before it is due, escalated when overdue, and closed by the person's own signature, or ended because a newer
 * version became effective, the person lost the role or left, or the requirement was retired.
 */
export class AssignmentCase implements AssignmentFacts {
  readonly state: AssignmentState;
  readonly ref: TrainingRef;
  signing = false;
  private ending: AssignmentEnding | null = null;
  private reminderBefore = '0s';
  private readonly deliveries = new OutboxDeliveries();

  constructor(
    private readonly input: TrainingAssignmentInput,
    workflowId: string,
  ) {
    this.ref = {
      workflowId,
      userId: input.userId,
      username: input.username,
      documentId: input.documentId,
      documentNumber: input.documentNumber,
      versionId: input.versionId,
      version: input.version,
      title: input.title,
    };
    this.state = {
      workflowId,
      username: input.username,
      documentNumber: input.documentNumber,
      version: input.version,
      state: 'opening',
      dueAt: null,
      reminded: false,
      escalated: false,
      completedAt: null,
      endedBecause: null,
    };
  }

  get userId(): string {
    return this.input.userId;
  }
  private get open(): boolean {
    return this.state.state === 'assigned';
  }

  private publish(): void {
    upsertSearchAttributes([
      { key: EntityType, value: 'training' },
      { key: EntityId, value: `${this.input.documentNumber}:v${this.input.version}` },
      { key: Stage, value: this.state.state },
      { key: Assignees, value: this.open ? [`user:${this.input.username}`] : null },
      { key: DueAt, value: this.open && this.state.dueAt ? new Date(this.state.dueAt) : null },
    ]);
  }

  async run(): Promise<AssignmentState> {
    const opening = await db.openTrainingAssignment(this.ref, this.input.requestedBy);
    if (!opening.opened) {
      this.state.state = 'refused';
      this.publish();
      return this.state;
    }
    this.deliver(opening.outboxIds ?? []);
    this.reminderBefore = opening.reminderBefore;
    this.state.state = 'assigned';
    this.state.dueAt = opening.dueAt;
    this.publish();
    const openedAt = Date.now();
    while (this.open) {
      const settled = () => !this.open || (this.ending !== null && !this.signing);
      const next = !this.state.reminded
        ? reminderAt(openedAt, opening.dueAt, this.reminderBefore)
        : !this.state.escalated
          ? Date.parse(opening.dueAt)
          : null;
      const woke = next === null ? (await condition(settled), true) : await condition(settled, until(next, Date.now()));
      if (!this.open) break;
      if (this.ending !== null && !this.signing) {
        await this.end(this.ending);
        continue;
      }
      if (!woke) await this.remind(this.state.reminded ? 'escalation' : 'reminder');
    }
    await this.deliveries.quiet();
    return this.state;
  }

  private deliver(outboxIds: string[]): void {
    this.deliveries.deliver(outboxIds);
  }

  private async remind(kind: 'reminder' | 'escalation'): Promise<void> {
    if (kind === 'reminder') this.state.reminded = true;
    else this.state.escalated = true;
    this.deliver(await db.remindTrainingAssignment(this.ref, { kind, dueAt: this.state.dueAt ?? '' }));
  }

  async signOff(args: SignOffArgs): Promise<AssignmentState> {
    this.signing = true;
    try {
      const recorded = await undoneIfRefused(
        () => db.recordTrainingSignOff(this.ref, { actor: args.actor, grant: args.grant, signature: args.signature }),
        () => undefined,
      );
      this.state.state = 'completed';
      this.state.completedAt = recorded.completedAt;
      this.publish();
    } finally {
      this.signing = false;
    }
    return this.state;
  }

  /** Asks the run to end the assignment; the recording step believes the reason only when Postgres bears it out. */
  requestEnd(reason: AssignmentEnding): void {
    if (this.open) this.ending = reason;
  }

  handOverFrom(user: DeactivatedUser): void {
    if (user.userId === this.input.userId) this.requestEnd('user_deactivated');
  }

  private async end(reason: AssignmentEnding): Promise<void> {
    this.ending = null;
    try {
      const { ended } = await db.endTrainingAssignment(this.ref, reason);
      if (!ended) return;
    } catch (err) {
      if (!grantRefusal(err)) throw err;
      return;
    }
    this.state.state = reason === 'superseded' ? 'superseded' : 'cancelled';
    this.state.endedBecause = reason;
    this.publish();
  }
}
