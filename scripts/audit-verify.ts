import { loadConfig } from '../common/config';
import { verifyAuditChain } from '../db/audit';
import { createDb } from '../db/knex';

/** Checks the whole audit trail's hash chain; exits 1 and names the first broken link when it does not hold. */
async function main(): Promise<number> {
  const config = loadConfig();
  const db = createDb(config.DATABASE_URL, 2);
  try {
    const verdict = await verifyAuditChain(db);
    if (verdict.ok) {
      console.log(`✔ audit trail intact: ${verdict.events} events, every hash recomputed and linked`);
      return 0;
    }
    console.log(`✘ audit trail broken at event ${verdict.firstBroken!.seq}: ${verdict.firstBroken!.reason}`);
    console.log(`  ${verdict.events} events before it verified.`);
    return 1;
  } finally {
    await db.destroy();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`audit verification could not run: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  },
);
