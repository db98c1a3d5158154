import type { Knex } from 'knex';

/**
 * The kinds of record a PHI access event may name are a CHECK constraint; migrations that add kinds change it by
 * adding to (or, going down, taking from) the list the database holds, so migrations written side by side never
 * drop each other's kinds.
 */
export async function changePhiAccessKinds(knex: Knex, change: { add?: string[]; remove?: string[] }): Promise<void> {
  const { rows } = await knex.raw(
    `select pg_get_constraintdef(oid) as def from pg_constraint where conname = 'phi_access_events_record_kind_check'`,
  );
  const existing = [...String(rows[0]?.def ?? '').matchAll(/'([a-z_]+)'/g)].map((m) => m[1]);
  if (existing.length === 0) throw new Error('phi_access_events_record_kind_check not found');
  const remove = new Set(change.remove ?? []);
  const kinds = [...new Set([...existing, ...(change.add ?? [])])].filter((k) => !remove.has(k));
  // Going down never deletes access events: those already written under a removed kind stay (NOT VALID), new ones
  // of that kind are refused.
  await knex.raw(`
    alter table phi_access_events drop constraint phi_access_events_record_kind_check;
    alter table phi_access_events add constraint phi_access_events_record_kind_check
      check (record_kind in (${kinds.map((k) => `'${k}'`).join(', ')}))${remove.size ? ' not valid' : ''};
  `);
}
