import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type { Knex } from 'knex';
import { FailureType } from '../../common/failures';
import type { Actor, Role } from '../../common/roles';
import type { SignatureInput } from '../../common/signatures';
import { appendAudit } from '../../db/audit';
import { consumeGrant, type GrantClaim, type GrantedUser, type GrantRefusal } from '../../db/grants';
import { queueNotifications } from '../../db/notifications';
import { resolveRecipients } from '../../db/recipients';
import type { ActivityDeps } from '../deps';
import { activityKey } from '../keys';
import { deliverOutbox } from '../notifications';

const GRANT_CHECK = 'system:action-grants';

/** The record a run acts on, as the security trail and the operators' alert name it. */
export interface RecordRef {
  workflowId: string;
  entityType: string;
  entityId: string;
  /** How people call the record: "SOP-001 v2", "CAPA-2026-0004". */
  label: string;
  /** Where the alert links to. */
  link: string;
  /** Kept with the security event (e.g. the version); never PHI. */
  details?: Record<string, unknown>;
}

/** Why the proof a run was sent does not hold: a grant refusal, or a signal Postgres does not bear out. */
export type RefusalReason = GrantRefusal | 'not_superseded' | 'not_from_labflow';

/** A person's request as a run received it: the recording step checks and consumes its grant. */
export interface ActionProof<A extends `${string}.${string}`> {
  action: A;
  grant: unknown;
  actor: unknown;
  request: unknown;
  signature?: SignatureInput;
}

/** Thrown inside a recording transaction so it rolls back; turned into a GrantRefused failure outside it. */
export class Refusal extends Error {
  constructor(
    readonly reason: RefusalReason,
    readonly claimedUserId: string | null,
  ) {
    super(reason);
  }
}

export const asActor = (user: GrantedUser): Actor => ({
  userId: user.id,
  username: user.username,
  printedName: user.printed_name,
  roles: user.roles,
});

/** The user ID a run names, cut to a length fit for the trail; null when it names none. */
const claimedId = (actor: unknown): string | null => {
  const userId = (actor as { userId?: unknown } | null | undefined)?.userId;
  return typeof userId === 'string' ? userId.slice(0, 64) : null;
};

/**
 * The checks every recording activity runs on the proof it was sent. `granted` consumes the action's grant inside
 * the recording transaction and answers the actor as Postgres knows them (the caller records that actor, never
 * the one the run was sent). `recording` runs the transaction; when the proof is refused nothing of it is written,
 * the attempt is an audited security event and an alert to IT operators (once per run), and the run hears a
 * non-retryable GrantRefused failure so it can give the action back.
 */
export function grantChecks({ db, mailer, mailDomain }: Pick<ActivityDeps, 'db' | 'mailer' | 'mailDomain'>) {
  async function granted(
    trx: Knex.Transaction,
    ref: Pick<RecordRef, 'workflowId'>,
    claim: Omit<GrantClaim, 'workflowId' | 'consumedBy' | 'userId'> & { actor: unknown },
    may: (user: GrantedUser) => boolean,
  ): Promise<Actor> {
    const claimedUserId = claimedId(claim.actor);
    const verdict = await consumeGrant(trx, {
      grantId: claim.grantId,
      action: claim.action,
      args: claim.args,
      signature: claim.signature,
      userId: claimedUserId ?? '',
      workflowId: ref.workflowId,
      consumedBy: activityKey(),
    });
    if (!verdict.ok) throw new Refusal(verdict.reason, claimedUserId);
    if (!may(verdict.user)) throw new Refusal('role_missing', claimedUserId);
    return asActor(verdict.user);
  }

  /**
   * Locks the record's row and checks that the run acting owns it: the row names the run (`workflow_id`) and the
   * activity runs inside that run. Answers the row.
   */
  async function ownedByRun(trx: Knex.Transaction, ref: Pick<RecordRef, 'workflowId'>, table: string, id: string) {
    const row = await trx(table).where({ id }).forNoKeyUpdate().first();
    const running = Context.current().info.workflowExecution?.workflowId;
    if (!row || row.workflow_id !== ref.workflowId || running !== ref.workflowId) throw new Refusal('other_run', null);
    return row;
  }

  /** `granted` for a person's request as the run received it, with the arguments the grant was bound to. */
  function provenAction<A extends `${string}.${string}`>(
    trx: Knex.Transaction,
    ref: Pick<RecordRef, 'workflowId'>,
    proof: ActionProof<A>,
    args: unknown,
    may: (action: A, roles: readonly Role[]) => boolean,
  ): Promise<Actor> {
    return granted(
      trx,
      ref,
      {
        grantId: proof.grant,
        action: proof.action,
        actor: proof.actor,
        args,
        signature: proof.signature && { meaning: proof.signature.meaning, contentHash: proof.signature.contentHash },
      },
      (user) => may(proof.action, user.roles),
    );
  }

  async function recording<T>(ref: RecordRef, action: string, work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
    try {
      return await db.transaction(work);
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      await securityEvent(ref, action, err);
      throw ApplicationFailure.create({
        type: FailureType.GrantRefused,
        message: `${action} on ${ref.label} was refused: it carries no valid proof that labflow authenticated it (${err.reason})`,
        nonRetryable: true,
      });
    }
  }

  async function securityEvent(ref: RecordRef, action: string, refusal: Refusal): Promise<void> {
    const outboxIds = await db.transaction(async (trx) => {
      await appendAudit(trx, {
        actor: GRANT_CHECK,
        action: 'security.grant_refused',
        entityType: ref.entityType,
        entityId: ref.entityId,
        details: {
          ...ref.details,
          workflowId: ref.workflowId,
          attempted: action,
          reason: refusal.reason,
          claimedUserId: refusal.claimedUserId,
        },
        idempotencyKey: activityKey('grant-refused'),
      });
      return queueNotifications(
        trx,
        await resolveRecipients(trx, [{ kind: 'role', role: 'it_operator' }]),
        {
          idempotencyKey: `grant-refused:${ref.workflowId}`,
          kind: 'security.grant_refused',
          title: `Refused an unproven action on ${ref.label}`,
          body:
            `The run ${ref.workflowId} was sent "${action}" without valid proof that labflow's API authenticated it ` +
            `(${refusal.reason}). Nothing was recorded. Someone with access to Temporal may be sending forged requests: ` +
            'check the audit trail for security.grant_refused events and who can reach the Temporal frontend. ' +
            'This alert is sent once per run.',
          link: ref.link,
        },
        mailDomain,
      );
    });
    // The refusal stands whether or not the relay answers; the email stays in the outbox otherwise.
    await deliverOutbox({ db, mailer }, outboxIds).catch((err: unknown) =>
      log.warn('grant refusal alert not delivered', { error: err instanceof Error ? err.message : String(err) }),
    );
  }

  return { granted, ownedByRun, provenAction, recording };
}
