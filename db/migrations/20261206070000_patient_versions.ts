import type { Knex } from 'knex';

/**
 * Every version of a patient's demographic record, the first included: the audit trail keeps only hashes of the
 * old and new values of a changed field (they are PHI), and this table keeps the values themselves, with who
 * recorded each version and when. Versions are never changed and go only with their patient (a purge after
 * retention).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table patient_versions (
      patient_id uuid not null references patients(id) on delete cascade,
      version integer not null check (version >= 1),
      given_name text not null,
      family_name text not null,
      date_of_birth date not null,
      mrn text,
      sex text,
      address text,
      phone text,
      recorded_by uuid references users(id),
      recorded_at timestamptz not null default now(),
      primary key (patient_id, version)
    );
    create function patient_versions_guard() returns trigger language plpgsql as $$
    begin
      if tg_op = 'DELETE' and not exists (select 1 from patients where id = old.patient_id) then
        return old;
      end if;
      raise exception 'patient versions are kept: % refused', tg_op using errcode = 'insufficient_privilege';
    end $$;
    create trigger patient_versions_kept before update or delete on patient_versions
      for each row execute function patient_versions_guard();
    create trigger patient_versions_no_truncate before truncate on patient_versions
      for each statement execute function patient_versions_guard();
    insert into patient_versions (patient_id, version, given_name, family_name, date_of_birth, mrn, sex, address, phone,
                                  recorded_by, recorded_at)
      select id, 1, given_name, family_name, date_of_birth, mrn, sex, address, phone, created_by, coalesce(updated_at, created_at)
        from patients;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop table patient_versions;
    drop function patient_versions_guard();
  `);
}
