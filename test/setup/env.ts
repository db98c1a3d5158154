import type { Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import type { NativeConnection } from '@temporalio/worker';
import type { Db } from '../../db/knex';
import type { ReceivedMail } from '../helpers/smtp-sink';
import type { TestTemporalServer } from './test-temporal';

/** What the root hook brought up for the whole run: one Temporal dev server, one database, one SMTP sink. */
export interface TestEnv {
  temporalAddress: string;
  /** TEMPORAL_ADDRESS plus, on the cluster profile, the TEMPORAL_TLS_* settings: for worker and API processes. */
  temporalEnv: Record<string, string>;
  /** The run's Temporal server process, on the cluster profile only: to kill and restart it (fault tests). */
  temporalServer?: TestTemporalServer;
  /** The run's database as the superuser: the test's own hand, which may do what the application role may not. */
  databaseUrl: string;
  db: Db;
  /** The run's roles (per database name, so parallel runs on one server never share them): db/database-roles.ts. */
  roles: { owner: string; app: string; backup: string };
  /** The run's database as the application role: what the API and the worker of a test connect as. */
  appDatabaseUrl: string;
  appDb: Db;
  /** The run's database as the read-only role backups run as. */
  backupDatabaseUrl: string;
  /** Uses dataConverter, as every client and worker of a test must. */
  client: Client;
  /** The run's payload keys in PAYLOAD_KEYS form, for workers started as processes. */
  payloadKeys: string;
  /** Encrypts with the run's payload keys; pass it to every worker and client a test creates. */
  dataConverter: DataConverter;
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
