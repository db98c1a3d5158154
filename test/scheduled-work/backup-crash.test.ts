import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import type { BackupInput, BackupResult } from '../../common/scheduled-work';
import { startPlatform, type Platform } from '../helpers/platform';
import { waitFor } from '../helpers/wait';
import { killHard, spawnWorker } from '../helpers/worker-process';
import { testEnv } from '../setup/env';
import { testBackupSettings, uniqueSuffix } from './support';

describe('a worker killed in the middle of a dump', () => {
  let p: Platform;
  before(async () => {
    p = await startPlatform({ withWorker: false });
  });
  after(() => p.stop());

  it('leaves no half file counted as good: the dump runs again on another worker and the backup verifies', async () => {
    const db = testEnv().db;
    const settings = await testBackupSettings({ offsiteDir: null, sizeBandPercent: 10_000 });
    const worker = await spawnWorker(p.taskQueue);
    // Hold a lock pg_dump must wait for, so the dump is reliably in progress when the worker dies.
    const blocker = await db.transaction();
    let released = false;
    try {
      await blocker.raw('lock table documents in access exclusive mode');
      const workflowId = `backup:crash-${uniqueSuffix()}`;
      const handle = await testEnv().client.workflow.start('backupWorkflow', {
        workflowId,
        taskQueue: p.taskQueue,
        args: [{ settings, trigger: 'manual' } satisfies BackupInput],
      });
      await waitFor(
        async () =>
          (
            await db.raw(
              `select 1 from pg_stat_activity where application_name = 'pg_dump' and wait_event_type = 'Lock' and datname = current_database()`,
            )
          ).rows.length > 0,
        'pg_dump waiting inside the dump',
      );
      const row = await db('backups').where({ workflow_id: workflowId }).first();
      assert.equal(row.state, 'running');
      assert.ok((await readdir(settings.dir)).includes(`${row.id}.dump.partial`), 'the dump is under way');
      await killHard(worker);

      // The orphaned pg_dump finishes into a file nobody will rename; the retry starts its own dump.
      await blocker.commit();
      released = true;
      await p.startWorker();
      const result = (await handle.result()) as BackupResult;
      assert.equal(result.backupId, row.id);
      assert.equal(result.state, 'verified');
      const after = await db('backups').where({ workflow_id: workflowId });
      assert.equal(after.length, 1);
      assert.equal(after[0].state, 'verified');
      const files = (await readdir(settings.dir)).filter((f) => f.startsWith(row.id)).sort();
      assert.deepEqual(files, [`${row.id}.dump`, `${row.id}.globals.sql`]);
      const history = await handle.fetchHistory();
      const dumpAttempts = history.events!.flatMap((e) =>
        e.activityTaskStartedEventAttributes ? [e.activityTaskStartedEventAttributes.attempt] : [],
      );
      assert.ok(dumpAttempts.includes(2), `the dump ran again: attempts ${dumpAttempts.join(',')}`);
    } finally {
      if (!released) await blocker.rollback();
      await killHard(worker);
    }
  });
});
