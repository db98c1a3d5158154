import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { SCHEDULE_IDS } from '../../common/scheduled-work';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { scheduleDefinitions } from '../../workers/schedules';
import { download } from './support';

describe('bulk export files expire after BULK_EXPORT_RETENTION', () => {
  let p: Platform;
  let qa: TestUser;
  // A year no other file's CAPAs are in: the selection is empty, the export small and quick.
  const year = randomInt(2901, 3000);
  before(async () => {
    p = await startPlatform({ apiConfig: { bulkExports: { maxRecords: 10, retentionMs: 7 * 86_400_000 } } });
    ({ qa } = await makeUsers({ qa: ['qa_manager'] }));
  });
  after(() => p.stop());

  const status = (id: string) => p.api('GET', `/api/v1/bulk-exports/${id}`, { key: qa.apiKey });
  const runExpiry = (retention: string) =>
    testEnv().client.workflow.execute('bulkExportExpiryWorkflow', {
      taskQueue: p.taskQueue,
      workflowId: `bulk-export-expiry:test-${randomInt(1e9)}`,
      args: [{ retention }],
    }) as Promise<{ expired: number }>;

  async function completedExport(): Promise<string> {
    const res = await p.api('POST', '/api/v1/bulk-exports', { key: qa.apiKey, body: { kind: 'capas', year, format: 'json' } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    await waitFor(async () => ((await status(res.body.id)).body.state === 'completed' ? true : undefined), 'completed', 60_000);
    return res.body.id;
  }

  it('is run hourly by a Schedule with the configured retention', () => {
    const def = scheduleDefinitions({ taskQueue: 'q', timeZone: 'UTC', backup: {} as never, outboxDir: null, bulkExportRetention: '3d' }).find(
      (d) => d.scheduleId === SCHEDULE_IDS.bulkExportExpiry,
    );
    assert.ok(def);
    assert.equal(def.workflowType, 'bulkExportExpiryWorkflow');
    assert.deepEqual(def.args, [{ retention: '3d' }]);
    assert.deepEqual(def.spec.intervals, [{ every: '1h' }]);
  });

  it('keeps a file younger than the retention; deletes an older one, marks it expired (audited), and its download answers 410', async () => {
    const fresh = await completedExport();
    const old = await completedExport();
    const before = await status(old);
    assert.equal(before.body.state, 'completed');
    assert.ok(before.body.expiresAt, JSON.stringify(before.body));
    assert.equal((await download(p, qa, `/api/v1/bulk-exports/${old}/file`)).status, 200);
    // Written eight days ago, as far as the retention is concerned.
    await testEnv().db('bulk_exports').where({ id: old }).update({ finished_at: testEnv().db.raw(`now() - interval '8 days'`) });

    const result = await runExpiry('7d');
    assert.ok(result.expired >= 1);

    const row = await testEnv().db('bulk_exports').where({ id: old }).first('state', 'file', 'expired_at', 'sha256');
    assert.equal(row.state, 'expired');
    assert.equal(row.file, null);
    assert.ok(row.expired_at);
    const view = await status(old);
    assert.equal(view.body.state, 'expired');
    assert.equal(view.body.download, null);
    assert.equal(view.body.expiredAt, new Date(row.expired_at).toISOString());

    const gone = await p.api('GET', `/api/v1/bulk-exports/${old}/file`, { key: qa.apiKey });
    assert.equal(gone.status, 410, JSON.stringify(gone.body));
    assert.match(gone.headers.get('content-type') ?? '', /application\/problem\+json/);
    assert.equal(gone.body.type, 'urn:labflow:problem:bulk-export-expired');
    assert.match(gone.body.detail, /BULK_EXPORT_RETENTION/);

    const trail = await testEnv().db('audit_events').where({ entity_type: 'bulk_export', entity_id: old }).orderBy('seq').pluck('action');
    assert.deepEqual(trail.slice(-2), ['bulk_export.expired', 'bulk_export.download_expired']);
    const expiredEvent = await testEnv().db('audit_events').where({ entity_type: 'bulk_export', entity_id: old, action: 'bulk_export.expired' }).first();
    assert.equal(expiredEvent.details.sha256, row.sha256);
    assert.equal(expiredEvent.details.retention, '7d');

    // The younger one keeps its file; a second sweep finds the old one already done.
    assert.equal((await status(fresh)).body.state, 'completed');
    assert.equal((await download(p, qa, `/api/v1/bulk-exports/${fresh}/file`)).status, 200);
    await runExpiry('7d');
    assert.equal(
      (await testEnv().db('audit_events').where({ entity_type: 'bulk_export', entity_id: old, action: 'bulk_export.expired' })).length,
      1,
    );
  });
});
