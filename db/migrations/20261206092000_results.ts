import type { Knex } from 'knex';

/**
 * Test results: each routed test's analysis (one row per run, a retest is a new row linked to the one it
 * repeats), the values entered for it (every entry kept; the analysis points at its current one), the
 * verifications, each test's result policy and its versioned reference ranges. The patient's sex joins the
 * requisition's identifiers so ranges by sex can match.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table samples add column patient_sex text check (patient_sex in ('female', 'male'));

    create table test_result_policies (
      test_code text primary key references test_codes(code),
      result_kind text not null check (result_kind in ('numeric', 'coded', 'text')),
      unit text,
      codes text[],
      self_verification boolean not null default false,
      verifications_required integer not null default 1 check (verifications_required between 1 and 5),
      multi_verification text not null default 'distinct' check (multi_verification in ('distinct', 'not_consecutive')),
      check ((result_kind = 'numeric') = (unit is not null)),
      check ((result_kind = 'coded') = (codes is not null))
    );

    create table reference_ranges (
      id uuid primary key default gen_random_uuid(),
      test_code text not null references test_codes(code),
      version integer not null check (version > 0),
      sex text not null default 'any' check (sex in ('any', 'female', 'male')),
      age_min_days integer not null default 0 check (age_min_days >= 0),
      age_max_days integer check (age_max_days is null or age_max_days > age_min_days),
      unit text not null,
      low numeric,
      high numeric,
      critical_low numeric,
      critical_high numeric,
      created_at timestamptz not null default now()
    );
    create index reference_ranges_test on reference_ranges (test_code, version);

    create table analyses (
      id uuid primary key default gen_random_uuid(),
      workflow_id text not null unique,
      sample_id uuid not null references samples(id),
      accession text not null,
      test_code text not null references test_codes(code),
      retest_number integer not null default 1 check (retest_number > 0),
      retest_of uuid references analyses(id),
      retested_by uuid references analyses(id),
      state text not null default 'pending' check (state in ('pending', 'resulted', 'to_be_verified', 'verified',
        'released', 'retracted', 'rejected', 'cancelled')),
      frozen boolean not null default false,
      current_entry_id uuid,
      reason text,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      unique (sample_id, test_code, retest_number)
    );

    create table analysis_entries (
      id uuid primary key default gen_random_uuid(),
      analysis_id uuid not null references analyses(id),
      kind text not null check (kind in ('numeric', 'coded', 'text')),
      numeric_value numeric,
      unit text,
      coded_value text,
      text_value text,
      performed_by text not null,
      instrument text,
      entered_by uuid not null references users(id),
      entered_at timestamptz not null default now(),
      applied_at timestamptz,
      flag text check (flag in ('normal', 'low', 'high', 'critical_low', 'critical_high')),
      range_snapshot jsonb
    );
    create index analysis_entries_analysis on analysis_entries (analysis_id, entered_at);
    alter table analyses add foreign key (current_entry_id) references analysis_entries(id);

    create table analysis_verifications (
      analysis_id uuid not null references analyses(id),
      seq integer not null,
      user_id uuid not null references users(id),
      signature_id uuid,
      verified_at timestamptz not null default now(),
      primary key (analysis_id, seq)
    );

    insert into test_result_policies (test_code, result_kind, unit, codes) values
      ('TSH', 'numeric', 'mIU/L', null),
      ('HBA1C', 'numeric', '%', null),
      ('PT', 'numeric', 'INR', null),
      ('UCX', 'coded', null, '{no_growth,e_coli,k_pneumoniae,e_faecalis,mixed_flora}'),
      ('CSFCX', 'coded', null, '{no_growth,s_pneumoniae,n_meningitidis,h_influenzae}'),
      ('CMP', 'text', null, null),
      ('LIPID', 'text', null, null),
      ('CBC', 'text', null, null),
      ('UA', 'text', null, null);

    insert into reference_ranges (test_code, version, sex, age_min_days, age_max_days, unit, low, high, critical_low, critical_high) values
      ('TSH', 1, 'any', 6570, null, 'mIU/L', 0.4, 4.0, 0.01, 50),
      ('HBA1C', 1, 'any', 6570, null, '%', 4.0, 5.6, null, 14),
      ('PT', 1, 'any', 0, null, 'INR', 0.8, 1.2, null, 5.0);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop table if exists analysis_verifications, analysis_entries, analyses, reference_ranges, test_result_policies cascade;
    alter table samples drop column if exists patient_sex;
  `);
}
