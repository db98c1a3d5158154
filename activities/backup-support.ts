import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Knex } from 'knex';
import type { Db } from '../db/knex';

/** Who the backup activities write to the audit trail as, when no person asked. */
export const BACKUP_ACTOR = 'system:backup';

/** The connection string of the database the activities write to: the one that is backed up. */
export function databaseUrlOf(db: Db): string {
  const connection = (db.client as { config: Knex.Config }).config.connection as { connectionString: string };
  return connection.connectionString;
}

/** Heartbeats every second with whatever progress() reports, until stopped. */
export function heartbeating(progress: () => Promise<unknown> | unknown): () => void {
  const timer = setInterval(() => {
    void Promise.resolve(progress()).then(
      (details) => Context.current().heartbeat(details),
      () => Context.current().heartbeat(),
    );
  }, 1000);
  return () => clearInterval(timer);
}

export function backupFailure(type: string, message: string, retryable = false): ApplicationFailure {
  return retryable ? ApplicationFailure.retryable(message, type) : ApplicationFailure.nonRetryable(message, type);
}
