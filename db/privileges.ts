import type { Knex } from 'knex';

/**
 * Records that are only ever added to. The application role may INSERT and SELECT them, nothing else; each also
 * has a trigger refusing UPDATE, DELETE and TRUNCATE (named `<table>_append_only`), which holds even for the owner
 * until it disables the trigger, which the application role cannot. A test checks the two lists agree.
 */
export const APPEND_ONLY_TABLES = [
  'audit_events',
  'audit_seals',
  'sample_custody_events',
  'phi_access_events',
  'phi_access_event_patients',
  'signatures',
  'signature_voids',
  'document_contents',
  'capa_records',
  'domain_events',
  'instrument_events',
  'competency_assessments',
  'autoverification_rule_sets',
  'instrument_booking_steps',
  'critical_call_attempts',
  'precheck_checklists',
  'coa_extraction_attempts',
  'incoming_inspection_records',
] as const;

/** Records that change but are never deleted (people keep their history; versions keep their signatures). */
export const NEVER_DELETED_TABLES = ['users', 'document_versions', 'authorisations', 'reports'] as const;

/** The migration bookkeeping: the owner's alone; the backup role reads it so that a dump is complete. */
const OWNER_ONLY_TABLES = ['knex_migrations', 'knex_migrations_lock'];

export interface GrantedRoles {
  app: string;
  backup: string;
}

/**
 * Grants the application and backup roles what they may do on every table and sequence of the public schema, and
 * nothing more. Run as the owner after every migration: a table a migration adds gets full DML for the application
 * role unless it is listed above, so the lists are the one place that says what is protected. Idempotent: it
 * revokes and grants again in one transaction.
 */
export async function grantPrivileges(owner: Knex, roles: GrantedRoles): Promise<void> {
  await owner.transaction(async (trx) => {
    const tables: string[] = (
      await trx.raw(`select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm') order by 1`)
    ).rows.map((r: { relname: string }) => r.relname);
    const both = [roles.app, roles.backup];
    await trx.raw('grant usage on schema public to ??, ??', both);
    await trx.raw('revoke all on all tables in schema public from ??, ??', both);
    await trx.raw('revoke all on all sequences in schema public from ??, ??', both);
    await trx.raw('grant select on all tables in schema public to ??', [roles.backup]);
    await trx.raw('grant select on all sequences in schema public to ??', [roles.backup]);
    await trx.raw('grant usage, select on all sequences in schema public to ??', [roles.app]);
    // Objects the owner creates at run time (the year's CAPA number sequence, made by a SECURITY DEFINER function)
    // are readable by the backup role too, so a dump never meets one it may not read.
    await trx.raw('alter default privileges in schema public grant select on tables to ??', [roles.backup]);
    await trx.raw('alter default privileges in schema public grant select on sequences to ??', [roles.backup]);
    await trx.raw('alter default privileges in schema public grant usage, select on sequences to ??', [roles.app]);
    for (const table of tables) {
      if (OWNER_ONLY_TABLES.includes(table)) continue;
      const privileges = (APPEND_ONLY_TABLES as readonly string[]).includes(table)
        ? 'select, insert'
        : (NEVER_DELETED_TABLES as readonly string[]).includes(table)
          ? 'select, insert, update'
          : 'select, insert, update, delete';
      await trx.raw(`grant ${privileges} on ?? to ??`, [table, roles.app]);
    }
  });
}
