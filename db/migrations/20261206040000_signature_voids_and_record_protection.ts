import type { Knex } from 'knex';

/**
 * Records that must not be rewritten say so in the database, not only in the application role's privileges
 * (db/privileges.ts), so that the owner too must first disable a trigger to change them:
 *
 * - Voiding a signature no longer rewrites it: a row in signature_voids references the voided signature, and the
 *   signature row stays exactly as it was signed. Signatures voided before this migration move there, with the time
 *   and reason they had. signatures, signature_voids, document_contents and capa_records are append-only.
 * - Users are never deleted (they are deactivated) and keep their ID and username.
 * - Document versions are never deleted and keep what identifies them; their content changes only while the
 *   version is still being drafted or reviewed, never once it was approved, made effective or closed.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create or replace function append_only_refuse_change() returns trigger language plpgsql as $$
    begin
      raise exception '% is append-only: % refused', tg_table_name, tg_op using errcode = 'insufficient_privilege';
    end $$;

    create table signature_voids (
      signature_id uuid primary key references signatures(id),
      voided_at timestamptz not null default now(),
      reason text not null
    );
    insert into signature_voids (signature_id, voided_at, reason)
      select id, coalesce(voided_at, signed_at), coalesce(void_reason, '') from signatures where void;
    alter table signatures drop column void, drop column voided_at, drop column void_reason;

    create trigger signatures_append_only before update or delete on signatures
      for each row execute function append_only_refuse_change();
    create trigger signatures_no_truncate before truncate on signatures
      for each statement execute function append_only_refuse_change();
    create trigger signature_voids_append_only before update or delete on signature_voids
      for each row execute function append_only_refuse_change();
    create trigger signature_voids_no_truncate before truncate on signature_voids
      for each statement execute function append_only_refuse_change();
    create trigger document_contents_append_only before update or delete on document_contents
      for each row execute function append_only_refuse_change();
    create trigger document_contents_no_truncate before truncate on document_contents
      for each statement execute function append_only_refuse_change();
    create trigger capa_records_append_only before update or delete on capa_records
      for each row execute function append_only_refuse_change();
    create trigger capa_records_no_truncate before truncate on capa_records
      for each statement execute function append_only_refuse_change();

    create function users_guard() returns trigger language plpgsql as $$
    begin
      if tg_op in ('DELETE', 'TRUNCATE') then
        raise exception 'users are never deleted (deactivate them instead): % refused', tg_op using errcode = 'insufficient_privilege';
      end if;
      if new.id <> old.id or new.username <> old.username then
        raise exception 'a user keeps their id and username' using errcode = 'insufficient_privilege';
      end if;
      return new;
    end $$;
    create trigger users_never_deleted before update or delete on users
      for each row execute function users_guard();
    create trigger users_no_truncate before truncate on users
      for each statement execute function users_guard();

    create function document_versions_guard() returns trigger language plpgsql as $$
    begin
      if tg_op in ('DELETE', 'TRUNCATE') then
        raise exception 'document versions are never deleted: % refused', tg_op using errcode = 'insufficient_privilege';
      end if;
      if new.id <> old.id or new.document_id <> old.document_id or new.version <> old.version or new.author_id <> old.author_id then
        raise exception 'a document version keeps its document, number and author' using errcode = 'insufficient_privilege';
      end if;
      if new.content_hash <> old.content_hash and old.state not in ('draft', 'in_review', 'changes_requested') then
        raise exception 'the content of a % version does not change', old.state using errcode = 'insufficient_privilege';
      end if;
      return new;
    end $$;
    create trigger document_versions_never_deleted before update or delete on document_versions
      for each row execute function document_versions_guard();
    create trigger document_versions_no_truncate before truncate on document_versions
      for each statement execute function document_versions_guard();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop trigger document_versions_never_deleted on document_versions;
    drop trigger document_versions_no_truncate on document_versions;
    drop function document_versions_guard();
    drop trigger users_never_deleted on users;
    drop trigger users_no_truncate on users;
    drop function users_guard();
    drop trigger capa_records_append_only on capa_records;
    drop trigger capa_records_no_truncate on capa_records;
    drop trigger document_contents_append_only on document_contents;
    drop trigger document_contents_no_truncate on document_contents;
    drop trigger signatures_append_only on signatures;
    drop trigger signatures_no_truncate on signatures;
    alter table signatures add column void boolean not null default false, add column voided_at timestamptz,
      add column void_reason text;
    update signatures s set void = true, voided_at = v.voided_at, void_reason = v.reason
      from signature_voids v where v.signature_id = s.id;
    drop table signature_voids;
    -- Later migrations protect their own tables with the same function: it stays while any trigger still uses it.
    do $$ begin
      if not exists (select 1 from pg_trigger t join pg_proc p on p.oid = t.tgfoid where p.proname = 'append_only_refuse_change') then
        drop function append_only_refuse_change();
      end if;
    end $$;
  `);
}
