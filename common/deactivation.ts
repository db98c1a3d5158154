import { defineSignal } from '@temporalio/workflow';
import type { AssigneeRef } from './assignees';

/** The user a deactivation notice names. */
export interface DeactivatedUser {
  userId: string;
  username: string;
}

/**
 * A user was deactivated: each process hands what the user holds in the run to the people its docs name. Every
 * process believes it only when Postgres shows the user inactive (the recording activity checks it); the name is
 * the one CAPA has always answered to.
 */
export const userDeactivatedSignal = defineSignal<[DeactivatedUser]>('userDeactivated');

/**
 * Who receives what a deactivated submitter held in a sample (recollection requests): the lab director as a role,
 * since another clinician cannot be guessed; they arrange the recollection with one.
 */
export const SAMPLE_WORK_RECEIVER: AssigneeRef = { kind: 'role', role: 'lab_director' };
