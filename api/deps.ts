import type { Client } from '@temporalio/client';
import type { PayloadCodec } from '@temporalio/common';
import type { Context } from 'koa';
import type { Actor } from '../common/roles';
import type { Summarizer, SummaryAttemptPolicy } from '../common/soap-summary';
import type { AuditChainSettings } from '../db/audit-chain';
import type { SigningPolicy } from '../db/identity';
import type { Db } from '../db/knex';
import type { Logger } from '../platform/logger';
import type { CredentialSettings } from './credentials/settings';

export interface ApiConfig {
  taskQueue: string;
  bodyLimitBytes: number;
  apiKeyCacheTtlMs: number;
  signing: SigningPolicy;
  /** How long a written action grant may wait to be consumed by the run (ACTION_GRANT_TTL); 5 minutes when unset. */
  actionGrantTtlMs?: number;
  documentDefaults: { stageDue: string; reminderBefore: string; periodicReview: string };
  /** Browser origins (the Temporal Web UI) allowed to call /codec/*. */
  codecCorsOrigins?: string[];
  summary: SummarySettings;
  /** The domain of MAIL_FROM, for the Message-IDs of emails the API queues in the outbox; 'localhost' when unset. */
  mailDomain?: string;
  /** Enrolment, password policy and API keys; DEFAULT_CREDENTIAL_SETTINGS when absent. */
  credentials?: CredentialSettings;
}

export interface SummarySettings {
  /** The LLM providers configured here (credentials or host present), in the configured order. */
  providers: Summarizer[];
  /** Whether the local extractive summarizer is the last resort when no LLM provider answers. */
  extractiveFallback: boolean;
  attempt: SummaryAttemptPolicy;
  /** Per-provider attempt timeouts that differ from `attempt.timeout`. */
  timeouts?: Partial<Record<Summarizer, string>>;
  maxRounds: number;
  /** Bound on a request's `wait`. */
  maxWaitMs: number;
}

export interface ApiDeps {
  db: Db;
  temporal: Client;
  config: ApiConfig;
  log: Logger;
  authenticate: (ctx: Context) => Promise<Actor>;
  /** The payload codec of the Temporal clients, served at /codec/*; absent when payload encryption is off. */
  payloadCodec?: PayloadCodec;
  /** The audit chain key and checkpoint directories; absent: audit verification checks the unkeyed hashes only. */
  auditChain?: AuditChainSettings | null;
}
