import type { AuditChainSettings } from '../db/audit-chain';
import type { Db } from '../db/knex';
import type { ErpSetup } from './erp-sync';
import type { LlmSetup } from './llm/setup';
import type { Mailer } from './mailer';
import type { NoticeSettings } from '../common/notifications';
import type { TwilioSettings } from './channels/sms';
import type { EventBell } from './event-bell';

export interface ActivityDeps {
  db: Db;
  mailer: Mailer;
  /** Links in notifications point here. */
  publicUrl: string;
  /** The laboratory as its reports print it (LAB_NAME, LAB_ADDRESS). */
  lab?: { name: string; address: string };
  /** Host part of generated Message-IDs. */
  mailDomain: string;
  /** The ERP, when one is configured (ERP_URL); its absence turns the sync and supplier-status writes off. */
  erp?: ErpSetup;
  /** The summarizers: configured LLM providers, their circuit policy and bounds. Absent: only the extractive one. */
  llm?: LlmSetup;
  /** The audit chain key and checkpoint directories (AUDIT_CHAIN_KEY_FILE); absent: the chain is neither sealed nor anchored. */
  auditChain?: AuditChainSettings | null;
  /**
   * The read-only role's connection (BACKUP_DATABASE_URL): pg_dump runs as it, and the restore drill creates, fills
   * and drops its scratch database as it. Absent: the connection of db.
   */
  backupDatabaseUrl?: string;
  /**
   * Outbound webhooks: receivers allowed despite the SSRF rules, labflow's own origins, the failure period; `bell`
   * rung at each domain event's commit (the worker's), absent: a delivery activity ends its turn when nothing is pending.
   */
  webhooks?: { allowedHosts: string[]; ownOrigins?: string[]; disableAfter: string; requestTimeout?: string; bell?: EventBell };
  /** Notices: escalation and retries (NOTIFY_*), and Twilio's account when SMS is configured (TWILIO_*). */
  notices?: { settings: NoticeSettings; twilio?: Omit<TwilioSettings, 'timeoutMs'> };
}
