import type { BookingSettings } from '../common/booking';
import type { CompetencyPolicy } from '../common/competence';
import type { Client } from '@temporalio/client';
import type { PayloadCodec } from '@temporalio/common';
import type { Context } from 'koa';
import type { Actor } from '../common/roles';
import type { WebhookSettings } from '../common/webhook-delivery';
import type { Summarizer, SummaryAttemptPolicy } from '../common/soap-summary';
import type { AuditChainSettings } from '../db/audit-chain';
import type { SigningPolicy } from '../db/identity';
import type { Db } from '../db/knex';
import type { Logger } from '../platform/logger';
import type { CredentialSettings } from './credentials/settings';
import type { RateLimitSettings } from './hardening/rate-limits';
import type { EventStreams, StreamSettings } from './live/event-streams';

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
  /** RATE_LIMIT_*: shared through PostgreSQL by every API process. */
  rateLimits: RateLimitSettings;
  /** Browser origins allowed to call /api/v1 (CORS_ORIGINS); none when empty. */
  corsOrigins: string[];
  /** How many proxies in front of the API add X-Forwarded-For (TRUSTED_PROXIES); 0: the socket's address is the client. */
  trustedProxies: number;
  /** The longest window a schedule backfill may cover (SCHEDULE_BACKFILL_MAX_WINDOW). */
  backfillMaxWindowMs: number;
  /** Outbound webhooks (WEBHOOK_*); DEFAULT_WEBHOOK_SETTINGS when absent. */
  webhooks?: WebhookSettings;
  /** labflow's own origin (PUBLIC_URL): never a webhook receiver. */
  publicUrl?: string;
  /** Notifications: the URL prefixes a Slack incoming webhook may have (SLACK_WEBHOOK_URL_PREFIXES). */
  notifications?: { slackUrlPrefixes: string[] };
  /** Live event streams (STREAM_*); DEFAULT_STREAM_SETTINGS when absent. */
  streams?: StreamSettings;
  /** Competency reassessment intervals (COMPETENCY_*); DEFAULT_COMPETENCY_POLICY when absent. */
  competency?: CompetencyPolicy;
  /** Instrument bookings' windows and deadlines (BOOKING_*); DEFAULT_BOOKING_SETTINGS when absent. */
  bookings?: BookingSettings;
  /** Bulk exports (BULK_EXPORT_*); DEFAULT_BULK_EXPORT_MAX_RECORDS and a 7-day retention when absent. */
  bulkExports?: { maxRecords: number; retentionMs?: number };
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
  /** LLM tokens (input + output) one clinician's summary runs may use per UTC day (LLM_DAILY_TOKEN_BUDGET). */
  dailyTokenBudget: number;
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
  /**
   * false only in bench:api-overhead, to weigh the hardening (rate limits, security headers, CORS) against the same
   * API without it; no setting turns it off.
   */
  hardening?: boolean;
  /** The process's live event streams (GET /stream); absent, the route answers 503. */
  streams?: EventStreams;
}
