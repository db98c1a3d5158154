import { defineSignal } from '@temporalio/workflow';

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
