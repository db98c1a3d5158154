import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowFailedError } from '@temporalio/client';
import type { RestoreDrillResult } from '../../common/scheduled-work';
import { sealAuditChain, verifyAuditChain, type AuditVerdict } from '../../db/audit';
import {
  auditChainSettings,
  AuditChainKeyError,
  createAuditChainKeyFile,
  readAuditChainKey,
  readNewestCheckpoint,
} from '../../db/audit-chain';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { uniqueSuffix } from '../scheduled-work/support';
import { dropSeals, eventCount, openTrail, recordEvents, rewriteAndRehash, sealCount, tempDir, truncateFrom, type Trail } from './support';

const checkpointFiles = (dir: string) =>
  readdirSync(dir)
    .filter((n) => n.startsWith('audit-checkpoint-'))
    .sort();

describe('the keyed, anchored audit chain', () => {
  describe('an intact trail', () => {
    let trail: Trail;
    before(async () => {
      trail = await openTrail();
    });
    after(() => trail?.close());

    it('is sealed by the nightly run, anchored in a signed checkpoint next to the backups and their off-site copy, and verifies', async () => {
      const events = await eventCount(trail.db);
      const verdict = await trail.nightly();
      assert.deepEqual(verdict, { ok: true, events, firstBrokenSeq: null });
      assert.equal(await sealCount(trail.db), events);
      for (const dir of trail.chain.checkpointDirs) {
        const [name] = checkpointFiles(dir);
        assert.match(name, new RegExp(`^audit-checkpoint-\\d{8}T\\d{9}Z-${events}\\.json$`));
        assert.equal(statSync(join(dir, name)).mode & 0o777, 0o600);
        const cp = JSON.parse(readFileSync(join(dir, name), 'utf8'));
        assert.equal(cp.headSeq, events);
        assert.equal(cp.events, events);
        assert.equal(cp.keyId, trail.chain.keyId);
        assert.match(cp.signature, /^[0-9a-f]{64}$/);
      }
      const checked = await verifyAuditChain(trail.db, { chain: trail.chain });
      assert.equal(checked.ok, true, JSON.stringify(checked));
      assert.equal(checked.keyed?.sealed, events);
      assert.equal(checked.keyed?.checkpoint?.headSeq, events);
      assert.equal(await trail.db('notifications').where({ kind: 'audit.chain_broken' }).first(), undefined);
    });

    it('reports the events recorded since the last seal as unsealed, and the next nightly run seals and anchors them', async () => {
      const before = await eventCount(trail.db);
      await recordEvents(trail.db, 3);
      const checked = await verifyAuditChain(trail.db, { chain: trail.chain });
      assert.equal(checked.ok, true);
      assert.deepEqual(
        { sealed: checked.keyed?.sealed, unsealed: checked.keyed?.unsealed, anchoredAt: checked.keyed?.checkpoint?.headSeq },
        { sealed: before, unsealed: 3, anchoredAt: before },
      );
      assert.equal((await trail.nightly()).ok, true);
      const after = await verifyAuditChain(trail.db, { chain: trail.chain });
      assert.deepEqual([after.keyed?.sealed, after.keyed?.unsealed, after.keyed?.checkpoint?.headSeq], [before + 3, 0, before + 3]);
      assert.equal(checkpointFiles(trail.chain.checkpointDirs[0]).length, 2);
    });

    it('answers GET /admin/audit/verify with the keyed verdict', async () => {
      const res = await trail.api.api('GET', '/api/v1/admin/audit/verify', { key: trail.users.adminKey });
      assert.equal(res.status, 200);
      const body = res.body as AuditVerdict;
      assert.equal(body.ok, true);
      assert.equal(body.keyed?.sealed, body.events);
    });
  });

  describe('a superuser who rewrites an event and re-hashes every event after it', () => {
    let trail: Trail;
    before(async () => {
      trail = await openTrail();
      assert.equal((await trail.nightly()).ok, true);
    });
    after(() => trail?.close());

    it('fools the unkeyed hashes, but not the keyed links: verification names the rewritten event', async () => {
      await rewriteAndRehash(trail.db, 5, { forged: true });
      const unkeyed = await verifyAuditChain(trail.db);
      assert.equal(unkeyed.ok, true, 'the database hashes alone were re-computed to match');

      const keyed = await verifyAuditChain(trail.db, { chain: trail.chain });
      assert.equal(keyed.ok, false);
      assert.equal(keyed.firstBroken?.seq, 5);
      assert.match(keyed.firstBroken!.reason, /keyed link does not verify/);
      assert.equal(keyed.events, 4);
    });

    it('answers the API verify route with the failing verdict, not an error', async () => {
      const res = await trail.api.api('GET', '/api/v1/admin/audit/verify', { key: trail.users.adminKey });
      assert.equal(res.status, 200);
      assert.equal((res.body as AuditVerdict).ok, false);
      assert.equal((res.body as AuditVerdict).firstBroken?.seq, 5);
    });

    it('fails the nightly run, which seals and anchors nothing and emails every admin and QA manager, naming the event', async () => {
      const mailsBefore = testEnv().mails.length;
      await recordEvents(trail.db, 2);
      const seals = await sealCount(trail.db);
      const checkpoints = checkpointFiles(trail.chain.checkpointDirs[0]);

      assert.deepEqual(await trail.nightly(), { ok: false, events: 4, firstBrokenSeq: 5 });
      assert.equal(await sealCount(trail.db), seals, 'the new events stay unsealed: a broken trail is never blessed');
      assert.deepEqual(checkpointFiles(trail.chain.checkpointDirs[0]), checkpoints);

      const mine = [trail.users.admin, trail.users.qa, trail.users.author].map((u) => `${u}@lab.test`);
      const alerts = await waitFor(() => {
        const sent = testEnv()
          .mails.slice(mailsBefore)
          .filter((m) => m.subject?.includes('Audit trail verification failed') && m.to.some((to) => mine.includes(to)));
        return sent.length >= 2 ? sent : null;
      }, 'the alert emails');
      assert.deepEqual(alerts.flatMap((m) => m.to).sort(), [`${trail.users.admin}@lab.test`, `${trail.users.qa}@lab.test`].sort());
      assert.match(alerts[0].raw, /breaks at event 5/);
      const notices = await trail.db('notifications').where({ kind: 'audit.chain_broken' }).select('user_id');
      assert.equal(notices.length, 2, 'one in-app notice each for the admin and the QA manager, none for the author');
    });
  });

  describe('a superuser who also deletes the seals of the rewritten events', () => {
    let trail: Trail;
    before(async () => {
      trail = await openTrail();
      assert.equal((await trail.nightly()).ok, true);
    });
    after(() => trail?.close());

    it('is caught by the checkpoint, which anchors the sealed head', async () => {
      await rewriteAndRehash(trail.db, 6, { forged: true });
      await dropSeals(trail.db, 6);
      const verdict = await verifyAuditChain(trail.db, { chain: trail.chain });
      assert.equal(verdict.ok, false);
      assert.equal(verdict.firstBroken?.seq, 6);
      assert.match(verdict.firstBroken!.reason, /keyed seal is missing, yet the checkpoint of .* anchors the chain at event \d+/);
      // Nor does the nightly seal bless the unsealed forgery.
      assert.equal((await trail.nightly()).firstBrokenSeq, 6);
      assert.equal(await sealCount(trail.db), 5);
    });
  });

  describe('a superuser who deletes the newest events', () => {
    let trail: Trail;
    let head: number;
    before(async () => {
      trail = await openTrail();
      assert.equal((await trail.nightly()).ok, true);
      head = await eventCount(trail.db);
    });
    after(() => trail?.close());

    it('leaves a chain that links, but falls short of the checkpoint: verification names the first missing event', async () => {
      await truncateFrom(trail.db, head - 1);
      assert.equal((await verifyAuditChain(trail.db)).ok, true, 'what is left links without the key');
      const verdict = await verifyAuditChain(trail.db, { chain: trail.chain });
      assert.equal(verdict.ok, false);
      assert.equal(verdict.firstBroken?.seq, head - 1);
      assert.match(
        verdict.firstBroken!.reason,
        new RegExp(`event ${head - 1} is missing: the checkpoint of .* anchors the chain at event ${head}`),
      );
      assert.deepEqual(await trail.nightly(), { ok: false, events: head - 2, firstBrokenSeq: head - 1 });
    });

    it('cannot refill the gap with new events: they carry no seal the checkpoint accepts', async () => {
      await recordEvents(trail.db, 2);
      const verdict = await verifyAuditChain(trail.db, { chain: trail.chain });
      assert.equal(verdict.firstBroken?.seq, head - 1);
      assert.match(verdict.firstBroken!.reason, /keyed seal is missing, yet the checkpoint/);
    });
  });

  describe('the checkpoint files', () => {
    let trail: Trail;
    before(async () => {
      trail = await openTrail();
      assert.equal((await trail.nightly()).ok, true);
    });
    after(() => trail?.close());

    const newest = (dir: string) => join(dir, checkpointFiles(dir).at(-1)!);

    it('refuse a checkpoint whose content was altered, and the nightly run then seals nothing', async () => {
      const [primary, offsite] = trail.chain.checkpointDirs;
      await recordEvents(trail.db, 1);
      assert.equal((await trail.nightly()).ok, true);
      const file = newest(primary);
      const original = readFileSync(file, 'utf8');
      // Lowering the anchored head would hide a truncation, if the signature did not cover it.
      const cp = JSON.parse(original);
      writeFileSync(file, JSON.stringify({ ...cp, headSeq: cp.headSeq - 1, events: cp.events - 1 }));
      writeFileSync(newest(offsite), JSON.stringify({ ...cp, headSeq: cp.headSeq - 1, events: cp.events - 1 }));

      const verdict = await verifyAuditChain(trail.db, { chain: trail.chain });
      assert.equal(verdict.ok, false);
      assert.equal(verdict.firstBroken, undefined, 'every link holds; it is the anchor that is refused');
      assert.match(verdict.keyed!.checkpointRefused!.reason, /signature does not verify/);

      const seals = await sealCount(trail.db);
      await recordEvents(trail.db, 1);
      assert.deepEqual(await trail.nightly(), { ok: false, events: seals + 1, firstBrokenSeq: null });
      assert.equal(await sealCount(trail.db), seals);
      writeFileSync(file, original);
      writeFileSync(newest(offsite), original);
    });

    it('refuse an older valid checkpoint copied under a newer name, and one signed with another key', async () => {
      const [primary] = trail.chain.checkpointDirs;
      const oldest = join(primary, checkpointFiles(primary)[0]);
      const renamed = join(primary, `audit-checkpoint-29991231T235959999Z-${JSON.parse(readFileSync(oldest, 'utf8')).headSeq}.json`);
      copyFileSync(oldest, renamed);
      let read = readNewestCheckpoint(trail.chain);
      assert.equal(read.kind, 'refused');
      assert.match((read as { reason: string }).reason, /name does not match/);

      const other = auditChainSettings(randomBytes(32), trail.chain.checkpointDirs);
      read = readNewestCheckpoint(other);
      assert.equal(read.kind, 'refused');
      assert.match((read as { reason: string }).reason, /signed with another chain key/);
    });
  });

  describe('sealing after an upgrade', () => {
    let trail: Trail;
    before(async () => {
      trail = await openTrail(5);
    });
    after(() => trail?.close());

    it('seals the events recorded before seals existed once, then only new ones', async () => {
      const events = await eventCount(trail.db);
      assert.equal(await sealCount(trail.db), 0);
      const before = await verifyAuditChain(trail.db, { chain: trail.chain });
      assert.deepEqual([before.ok, before.keyed?.unsealed, before.keyed?.checkpoint], [true, events, null]);
      const first = await sealAuditChain(trail.db, trail.chain, new Date());
      assert.equal(first.newlySealed, events);
      await recordEvents(trail.db, 2);
      const second = await sealAuditChain(trail.db, trail.chain, new Date());
      assert.equal(second.newlySealed, 2);
      assert.equal(second.verdict.ok, true);
    });
  });

  describe('the restore drill', () => {
    let trail: Trail;
    before(async () => {
      trail = await openTrail();
    });
    after(() => trail?.close());

    const backupAndDrill = async () => {
      const backup = (await testEnv().client.workflow.execute('backupWorkflow', {
        workflowId: `backup:chain-${uniqueSuffix()}`,
        taskQueue: trail.taskQueue,
        args: [{ settings: trail.backup, trigger: 'manual' }],
      })) as { state: string };
      assert.equal(backup.state, 'verified');
      return testEnv().client.workflow.execute('restoreDrillWorkflow', {
        workflowId: `restore-drill:chain-${uniqueSuffix()}`,
        taskQueue: trail.taskQueue,
        args: [{ settings: trail.backup }],
      }) as Promise<RestoreDrillResult>;
    };

    it('verifies the restored chain against the newest checkpoint taken before the backup', async () => {
      assert.equal((await trail.nightly()).ok, true);
      const drill = await backupAndDrill();
      assert.equal(drill.ok, true, drill.failure ?? '');
      assert.equal(drill.auditChainOk, true);
    });

    it('fails on a backup of a truncated trail, naming the first bad event', async () => {
      assert.equal((await trail.nightly()).ok, true);
      const anchor = readNewestCheckpoint(trail.chain);
      assert.equal(anchor.kind, 'ok');
      const head = (anchor as { checkpoint: { headSeq: number } }).checkpoint.headSeq;
      await truncateFrom(trail.db, head - 1);
      // The backup itself records an event, which takes the place of a deleted one without its seal.
      await assert.rejects(backupAndDrill(), (err: WorkflowFailedError) => {
        assert.match(
          String(err.cause?.message),
          new RegExp(
            `the restored audit chain does not verify: the chain breaks at event ${head - 1}: .*missing, yet the checkpoint of .* anchors the chain at event ${head}`,
          ),
        );
        return true;
      });
      const drill = await trail.db('restore_drills').orderBy('started_at', 'desc').first();
      assert.deepEqual([drill.ok, drill.audit_chain_ok], [false, false]);
    });
  });

  describe('the chain key file', () => {
    it('is created with a random 256-bit key readable only by its owner, and refused when others can read it', async () => {
      const dir = await tempDir();
      const file = join(dir, 'audit-chain-key');
      createAuditChainKeyFile(file);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.equal(readAuditChainKey(file).length, 32);
      assert.throws(() => createAuditChainKeyFile(file), /EEXIST/, 'an existing key is never replaced');
      const loose = join(dir, 'loose-key');
      writeFileSync(loose, randomBytes(32).toString('hex'), { mode: 0o644 });
      assert.throws(
        () => readAuditChainKey(loose),
        (err: Error) => err instanceof AuditChainKeyError && /readable by others/.test(err.message),
      );
    });
  });
});
