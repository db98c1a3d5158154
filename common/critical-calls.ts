import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Config } from './config';
import type { Actor } from './roles';

/**
 * Critical-value calls: a critical result (flag critical_low or critical_high) starts a run,
 * `critical-call:<accession>:<test>[:<retest n>][:call-<n>]`, that holds until the ordering provider (or whoever the
 * lab reaches instead) has read the value back, or until the value stops being critical (the call is withdrawn). The
 * run carries IDs only; the value, the read-back, whom was called and the notes are in PostgreSQL. Bundle-safe.
 */
export const CRITICAL_CALL_STATES = ['calling', 'escalated', 'notified', 'withdrawn'] as const;
export type CriticalCallStateName = (typeof CRITICAL_CALL_STATES)[number];
/** The states of a call still waiting for someone to read the value back. */
export const OPEN_CRITICAL_CALL_STATES = ['calling', 'escalated'] as const satisfies readonly CriticalCallStateName[];
export const isOpenCallState = (state: unknown): boolean => (OPEN_CRITICAL_CALL_STATES as readonly unknown[]).includes(state);

/** Why a call was withdrawn: its analysis's value is no longer critical, or the analysis ended without it. */
export const WITHDRAWAL_REASONS = ['not_critical', 'retracted', 'rejected', 'cancelled', 'retested'] as const;
export type WithdrawalReason = (typeof WITHDRAWAL_REASONS)[number];

/** Runs recorded after this patch are told when their value stops being critical, and end `withdrawn`. */
export const CRITICAL_CALL_WITHDRAWAL_PATCH = 'critical-call-withdrawal';

export const CALL_OUTCOMES = ['CONFIRMED', 'REACHED_NO_READBACK', 'UNABLE_TO_REACH'] as const;
export type CallOutcome = (typeof CALL_OUTCOMES)[number];

export const CRITICAL_FLAGS = ['critical_low', 'critical_high'] as const;
export const isCriticalFlag = (flag: unknown): boolean => (CRITICAL_FLAGS as readonly unknown[]).includes(flag);

/** The run's input: the analysis it calls about, by ID. */
export interface CriticalCallInput {
  analysisWorkflowId: string;
  analysisId: string;
  accession: string;
  test: string;
  retestNumber: number;
}

/** How long and how often the lab tries before the lab director is called in (CRITICAL_CALL_*). */
export interface CriticalCallSettings {
  /** Failed attempts (not confirmed) before escalation. */
  maxAttempts: number;
  /** A duration ('30m'): from the call's opening to escalation when nobody confirmed. */
  deadline: string;
}

export const DEFAULT_CRITICAL_CALL_SETTINGS: CriticalCallSettings = { maxAttempts: 3, deadline: '30m' };

export const criticalCallSettings = (config: Config): CriticalCallSettings => ({
  maxAttempts: config.CRITICAL_CALL_MAX_ATTEMPTS,
  deadline: config.CRITICAL_CALL_DEADLINE,
});

export interface CriticalCallState {
  workflowId: string;
  accession: string;
  test: string;
  callId: string | null;
  state: CriticalCallStateName;
  /** Whether the requisition names an ordering provider (older samples do not: the call escalates at once). */
  hasOrderingProvider: boolean;
  attempts: number;
  failedAttempts: number;
  escalation: null | { reason: 'attempts' | 'deadline' | 'no_ordering_provider' };
  /** The request IDs of the attempts recorded, so a duplicate is answered, never recorded twice. */
  requestIds: string[];
}

/** An attempt as the run is sent it: the staged request's ID (what was typed is in Postgres) and the proof. */
export interface LogAttemptArgs {
  actor: Actor;
  grant: string;
  requestId: string;
  /** The row the API staged in critical_call_requests. */
  attemptRequestId: string;
  /** What the caller says happened; the recording step decides whether it counts as confirmed. */
  outcome: CallOutcome;
}

export const criticalCallStateQuery = defineQuery<CriticalCallState>('criticalCallState');
export const logAttemptUpdate = defineUpdate<CriticalCallState, [LogAttemptArgs]>('log-attempt');
/**
 * Tells a call's run that its record may have moved without it (the analysis's value stopped being critical and the
 * analysis's recording step withdrew the call). No arguments: the run reads the record, which is the authority.
 */
export const criticalCallRecordChangedSignal = defineSignal('criticalCallRecordChanged');

export const CRITICAL_CALL_ACTION = 'critical_call.log_attempt' as const;
export const CRITICAL_CALL_ROLES = ['lab_technician', 'lab_director'] as const;

/** What the attempt's grant binds, built alike by the API and the recording step. */
export const boundAttemptArgs = (a: { requestId: unknown; attemptRequestId: unknown; outcome: unknown }) => ({
  requestId: a.requestId ?? null,
  attemptRequestId: a.attemptRequestId ?? null,
  outcome: a.outcome ?? null,
});
