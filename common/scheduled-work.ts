/**
 * Contracts of labflow's scheduled work: the nightly backup and its weekly restore drill, overdue reminders, the
 * daily digest, the weekly clean-up and the health canary. Bundle-safe: types and constants only.
 */

/** Schedule IDs the API and the reconciler agree on. */
export const SCHEDULE_IDS = {
  auditVerify: 'audit-verify-nightly',
  backup: 'backup-nightly',
  restoreDrill: 'restore-drill-weekly',
  overdueReminders: 'overdue-reminders',
  dailyDigest: 'daily-digest',
  cleanup: 'cleanup-weekly',
  healthCanary: 'health-canary',
  bulkExportExpiry: 'bulk-export-expiry',
} as const;

/** Memo key naming who manages a schedule; the reconciler only ever deletes schedules it owns. */
export const SCHEDULE_OWNER_MEMO = 'managedBy';
export const DEFAULT_SCHEDULE_OWNER = 'labflow';

/** What a backup run needs to know; no secrets (the encryption key stays in a file on the worker's host). */
export interface BackupSettings {
  /** Where dumps are written (absolute path). */
  dir: string;
  /** Off-site copy (another path or mount); null: none. */
  offsiteDir: string | null;
  /** pg_dump -Z level, 0–9. */
  compression: number;
  /** A file holding a 256-bit key (64 hex characters); null: dumps are not encrypted. */
  encryptionKeyFile: string | null;
  /** A dump more than this many percent smaller or larger than the last good one fails verification. */
  sizeBandPercent: number;
  retention: { daily: number; weekly: number; monthly: number };
  /** Calendar days, weeks and months of retention are counted in this zone. */
  timeZone: string;
  /** Role pg_dump connects as; null: the user of DATABASE_URL. */
  pgUser: string | null;
  /** Heartbeat timeout of the dump (a dead worker is noticed within it). */
  heartbeatTimeout: `${number}${'ms' | 's' | 'm' | 'h' | 'd'}`;
}

export interface BackupInput {
  settings: BackupSettings;
  trigger?: 'scheduled' | 'manual';
  requestedBy?: string | null;
  /** The backup's date for retention (ISO); defaults to the run's start. Lets tests and imports simulate dates. */
  takenAt?: string;
}

export type BackupState = 'running' | 'verified' | 'failed' | 'expired';
export type BackupTier = 'daily' | 'weekly' | 'monthly';

export interface BackupResult {
  backupId: string;
  state: BackupState;
  dumpBytes: number;
  sha256: string;
  retention: { kept: number; expired: number };
}

export interface RestoreDrillInput {
  settings: BackupSettings;
  /** A specific backup; default the latest verified one. */
  backupId?: string;
}

export interface RestoreDrillResult {
  drillId: string;
  backupId: string;
  ok: boolean;
  restoreMs: number;
  rowCounts: Record<string, number>;
  auditChainOk: boolean;
  failure: string | null;
}

export interface OverdueRemindersInput {
  /** Reminder period: one reminder per task per period. */
  every: string;
  /** Per entity type: escalate to a role once a task is overdue by this long. */
  escalation?: Record<string, { after: string; to: string }>;
  /** Evaluate as of this instant (ISO); default now. */
  asOf?: string;
}

export const DEFAULT_ESCALATION: Record<string, { after: string; to: string }> = {
  default: { after: '24h', to: 'qa_manager' },
  document: { after: '24h', to: 'document_control' },
};

export interface DigestInput {
  /** Local hour (0–23) from which a user's digest of the day is sent. */
  hour: number;
  /** The lab's zone, for users who have not set their own. */
  labTimeZone: string;
  /** Tasks due within this window count as "due soon". */
  dueSoon: string;
  asOf?: string;
}

export interface CleanupInput {
  keepReadNotifications: string;
  keepSentEmails: string;
  keepRevokedKeys: string;
  /** Directory of .eml files written when no SMTP relay is configured; null: none. */
  outboxDir: string | null;
  keepOutboxFiles: string;
  asOf?: string;
}

export interface CleanupCounts {
  revokedKeys: number;
  readNotifications: number;
  sentEmails: number;
  outboxFiles: number;
}
