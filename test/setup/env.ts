import type { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import type { Db } from '../../db/knex';
import type { ReceivedMail } from '../helpers/smtp-sink';

/** What the root hook brought up for the whole run: one Temporal dev server, one database, one SMTP sink. */
export interface TestEnv {
  temporalAddress: string;
  databaseUrl: string;
  db: Db;
  client: Client;
  nativeConnection: NativeConnection;
  workflowBundle: { code: string };
  smtpPort: number;
  mails: ReceivedMail[];
}

let current: TestEnv | undefined;

export function setTestEnv(env: TestEnv | undefined): void {
  current = env;
}

export function testEnv(): TestEnv {
  if (!current) throw new Error('the test environment is not up (root hook did not run)');
  return current;
}
