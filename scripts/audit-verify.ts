import { databaseUrls, loadConfig } from '../common/config';
import { sealAuditChain, verifyAuditChain, type AuditVerdict } from '../db/audit';
import { auditChainFromConfig } from '../db/audit-chain';
import { createDb } from '../db/knex';

/**
 * Checks the whole audit trail: every hash, every keyed link (with AUDIT_CHAIN_KEY_FILE), and the newest signed
 * checkpoint next to the backups. Exits 1 and names the first broken link when it does not hold. With --seal it
 * also seals the events recorded since the last seal and writes a new checkpoint, as the nightly run does (after
 * an upgrade, this seals the events recorded before seals existed).
 */
async function main(args: string[]): Promise<number> {
  const seal = args.includes('--seal');
  const config = loadConfig();
  const chain = auditChainFromConfig(config);
  if (seal && !chain) {
    console.log('✘ --seal needs the audit chain key: set AUDIT_CHAIN_KEY_FILE');
    return 2;
  }
  const db = createDb(databaseUrls(config).app, 2);
  try {
    let verdict: AuditVerdict;
    if (seal) {
      const sealed = await sealAuditChain(db, chain!, new Date());
      verdict = sealed.verdict;
      if (sealed.checkpointFile) console.log(`✔ sealed ${sealed.newlySealed} new event(s); checkpoint written to ${sealed.checkpointFile}`);
    } else {
      verdict = await verifyAuditChain(db, { chain });
    }
    const keyed = verdict.keyed;
    if (!keyed)
      console.log('! no audit chain key (AUDIT_CHAIN_KEY_FILE): only the unkeyed hashes were checked, which a superuser can recompute');
    else if (keyed.checkpoint)
      console.log(
        `  checked against the checkpoint of ${keyed.checkpoint.at} (event ${keyed.checkpoint.headSeq}): ${keyed.checkpoint.file}`,
      );
    else if (!keyed.checkpointRefused)
      console.log('! no checkpoint yet: deleting the newest events would go unnoticed until one is written');
    if (keyed?.checkpointRefused)
      console.log(`✘ the newest checkpoint ${keyed.checkpointRefused.file} is refused: ${keyed.checkpointRefused.reason}`);
    if (verdict.firstBroken) {
      console.log(`✘ audit trail broken at event ${verdict.firstBroken.seq}: ${verdict.firstBroken.reason}`);
      console.log(`  ${verdict.events} events before it verified.`);
    }
    if (!verdict.ok) return 1;
    const sealedNote = keyed ? `; ${keyed.sealed} sealed with keyed links, ${keyed.unsealed} newer not sealed yet` : '';
    console.log(`✔ audit trail intact: ${verdict.events} events, every hash recomputed and linked${sealedNote}`);
    return 0;
  } finally {
    await db.destroy();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`audit verification could not run: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  },
);
