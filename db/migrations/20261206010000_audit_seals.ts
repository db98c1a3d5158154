import type { Knex } from 'knex';

/**
 * Keyed seals of the audit chain. The link of event n is HMAC(chain key, n, hash of n, link of n-1), computed by
 * labflow's worker with a key the database never holds, so a superuser who rewrites an event and re-hashes every
 * event after it cannot forge the links. Seals live apart from the events because the insert trigger cannot
 * compute them; like the events they are append-only. Events recorded before this migration are sealed by the
 * first seal run (the nightly audit check, or `npm run audit:verify -- --seal`). No foreign key to audit_events:
 * verification, not a constraint a superuser can drop, is what catches deleted events, and a reference would make a
 * TRUNCATE of the trail fail on the constraint before the append-only trigger says why.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table audit_seals (
      seq bigint primary key,
      link text not null check (link ~ '^[0-9a-f]{64}$'),
      sealed_at timestamptz not null default now()
    );

    create function audit_seals_refuse_change() returns trigger language plpgsql as $$
    begin
      raise exception 'audit_seals is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
    end $$;
    create trigger audit_seals_append_only before update or delete on audit_seals
      for each row execute function audit_seals_refuse_change();
    create trigger audit_seals_no_truncate before truncate on audit_seals
      for each statement execute function audit_seals_refuse_change();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop table if exists audit_seals;
    drop function if exists audit_seals_refuse_change;
  `);
}
