import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { GrantAction } from '../../common/grants';
import { issueGrant } from '../../db/grants';
import { testEnv } from '../setup/env';
import type { TestUser } from './users';

/**
 * What the forged-actions tests of every process share: grants issued straight into the table (as an attacker who
 * reached Temporal cannot, but a test must, to hold real-looking proof), spoiled grants, and the kinds of bad proof
 * that apply to any recorded action.
 */

/** Marks a grant the test consumed itself, standing for one an earlier action used up. */
export const USED_ELSEWHERE = 'an-earlier-activity';

export type Signature = { meaning: string; contentHash: string; signedAt: string };

/** A grant as the API would issue it after its checks, valid for five minutes. */
export function issueTestGrant(who: TestUser, workflowId: string, action: GrantAction, bound: unknown, signature?: Signature): Promise<string> {
  return issueGrant(testEnv().db, {
    userId: who.actor.userId,
    workflowId,
    action,
    args: bound,
    signature: signature && { meaning: signature.meaning, contentHash: signature.contentHash, passwordVerifiedAt: signature.signedAt },
    ttlMs: 300_000,
  });
}

export interface Forgery {
  name: string;
  grant: unknown;
  /** Refused by the Update's validator (so never in history) rather than by the recording activity. */
  byValidator?: boolean;
}

export interface ForgeryTarget {
  workflowId: string;
  who: TestUser;
  /** Someone else, whose real grant must not serve `who`. */
  other: TestUser;
  action: GrantAction;
  /** What the grant binds for the legitimate arguments, and for a different set of them. */
  bound: unknown;
  otherBound: unknown;
  signature?: Signature;
  /** Another action of the same run, with what its grant binds: a grant for it must not serve `action`. */
  otherAction?: { action: GrantAction; bound: unknown };
}

/**
 * Every kind of bad proof that applies to any action: none, malformed, made up, another user's, used, expired, for
 * other arguments, another run, another action; for a signed action also one without the password check.
 */
export async function grantForgeries(t: ForgeryTarget): Promise<Forgery[]> {
  const { workflowId, who, other, action, bound, otherBound, signature } = t;
  const db = testEnv().db;
  const used = await issueTestGrant(who, workflowId, action, bound, signature);
  await db('action_grants').where({ id: used }).update({ consumed_at: db.fn.now(), consumed_by: USED_ELSEWHERE });
  const expired = await issueTestGrant(who, workflowId, action, bound, signature);
  await db('action_grants')
    .where({ id: expired })
    .update({ created_at: db.raw(`now() - interval '10 minutes'`), expires_at: db.raw(`now() - interval '1 second'`) });
  const cases: Forgery[] = [
    { name: 'no grant', grant: undefined, byValidator: true },
    { name: 'a malformed grant ID', grant: 'trust-me', byValidator: true },
    { name: 'a made-up grant ID', grant: randomBytes(32).toString('base64url') },
    { name: "another user's grant", grant: await issueTestGrant(other, workflowId, action, bound, signature) },
    { name: 'a used grant', grant: used },
    { name: 'an expired grant', grant: expired },
    { name: 'a grant for other arguments', grant: await issueTestGrant(who, workflowId, action, otherBound, signature) },
    { name: 'a grant for another run', grant: await issueTestGrant(who, `${workflowId}-other`, action, bound, signature) },
  ];
  if (t.otherAction) {
    cases.push({ name: 'a grant for another action', grant: await issueTestGrant(who, workflowId, t.otherAction.action, t.otherAction.bound, signature) });
  }
  if (signature) cases.push({ name: 'a grant without a password check', grant: await issueTestGrant(who, workflowId, action, bound) });
  return cases;
}

/** The failure type an Update was refused with, or undefined when it was accepted. */
export async function refusalType(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (err) {
    assert.ok(err instanceof WorkflowUpdateFailedError, String(err));
    assert.ok(err.cause instanceof ApplicationFailure, String(err.cause));
    return err.cause.type ?? undefined;
  }
}
