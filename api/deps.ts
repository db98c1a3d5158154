import type { Client } from '@temporalio/client';
import type { Context } from 'koa';
import type { Actor } from '../common/roles';
import type { SigningPolicy } from '../db/identity';
import type { Db } from '../db/knex';
import type { Logger } from '../platform/logger';

export interface ApiConfig {
  taskQueue: string;
  bodyLimitBytes: number;
  apiKeyCacheTtlMs: number;
  signing: SigningPolicy;
  documentDefaults: { stageDue: string; reminderBefore: string; periodicReview: string };
}

export interface ApiDeps {
  db: Db;
  temporal: Client;
  config: ApiConfig;
  log: Logger;
  authenticate: (ctx: Context) => Promise<Actor>;
}
