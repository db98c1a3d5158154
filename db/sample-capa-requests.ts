import type { Knex } from 'knex';
import { REJECTION_CODES, type RejectionCode } from '../common/sample-intake';

/**
 * The CAPA hook of a rejection: the first active rule it satisfies (its code and submitting source rejected at
 * least `threshold` times within the rule's window, this rejection included) writes one pending CAPA request.
 * Returns the request's ID, or null when no rule is met. Runs in the rejection's transaction, before its audit event.
 */
export async function requestCapaIfRuleMet(
  trx: Knex.Transaction,
  r: {
    accession: string;
    workflowId: string;
    source: string;
    code: RejectionCode;
    condition: string;
    tests: string[];
    idempotencyKey: string;
  },
): Promise<string | null> {
  const rules = await trx('sample_capa_rules')
    .where({ active: true })
    .andWhere((q) => q.whereNull('rejection_code').orWhere('rejection_code', r.code))
    .andWhere((q) => q.whereNull('source').orWhere('source', r.source))
    .orderBy('threshold')
    .orderBy('created_at');
  for (const rule of rules) {
    const { n } = await trx('audit_events as a')
      .join('samples as s', 's.accession', 'a.entity_id')
      .where('a.entity_type', 'sample')
      .whereIn('a.action', ['sample.rejected', 'sample.tests_rejected'])
      .whereRaw(`a.details->>'code' = ?`, [r.code])
      .where('s.source', r.source)
      .whereRaw(`a.occurred_at > now() - make_interval(days => ?)`, [rule.window_days])
      .first(trx.raw('count(*)::int as n'));
    // This rejection's own audit event is written after this, in the same transaction: count it too.
    if (n + 1 < rule.threshold) continue;
    const [row] = await trx('sample_capa_requests')
      .insert({
        source_type: 'sample',
        source_id: r.accession,
        rule_id: rule.id,
        reason: `${n + 1} rejection(s) for ${r.code} (${REJECTION_CODES[r.code]}) from ${r.source} within ${rule.window_days} days`,
        details: JSON.stringify({
          code: r.code,
          condition: r.condition,
          source: r.source,
          tests: r.tests,
          workflowId: r.workflowId,
        }),
        idempotency_key: r.idempotencyKey,
      })
      .onConflict('idempotency_key')
      .merge(['idempotency_key'])
      .returning('id');
    return row.id as string;
  }
  return null;
}
