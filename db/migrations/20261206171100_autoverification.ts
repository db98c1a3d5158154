import type { Knex } from 'knex';

/**
 * Autoverification (CLSI AUTO10/AUTO15): versioned rule sets per test, each created by the lab director with an
 * electronic signature and never changed afterwards (a change is a new version). An analysis records the outcome of
 * the rule set it was judged by; one that passed every rule is `autoverified`, then counted as verified. Entries
 * may carry the instrument's own flags, which a rule set can refuse.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table autoverification_rule_sets (
      id uuid primary key default gen_random_uuid(),
      test_code text not null references test_codes(code),
      version integer not null check (version > 0),
      rules jsonb not null,
      content_hash text not null,
      created_by uuid not null references users(id),
      signature_id uuid not null references signatures(id),
      created_at timestamptz not null default now(),
      unique (test_code, version)
    );
    create trigger autoverification_rule_sets_append_only before update or delete on autoverification_rule_sets
      for each row execute function append_only_refuse_change();

    alter table analyses drop constraint analyses_state_check;
    alter table analyses add constraint analyses_state_check check (state in ('pending', 'resulted', 'to_be_verified',
      'autoverified', 'verified', 'released', 'retracted', 'rejected', 'cancelled'));
    alter table analyses
      add column autoverification jsonb,
      add column autoverified_by uuid references autoverification_rule_sets(id);

    alter table analysis_entries add column instrument_flags text[];
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table analysis_entries drop column if exists instrument_flags;
    update analyses set state = 'verified' where state = 'autoverified';
    alter table analyses drop column if exists autoverified_by, drop column if exists autoverification;
    alter table analyses drop constraint analyses_state_check;
    alter table analyses add constraint analyses_state_check check (state in ('pending', 'resulted', 'to_be_verified',
      'verified', 'released', 'retracted', 'rejected', 'cancelled'));
    drop table if exists autoverification_rule_sets;
  `);
}
