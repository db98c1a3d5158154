/**
 * Drives real bulk-export runs on the test server and saves their histories as replay fixtures in
 * test/fixtures/histories/bulk-export/: one that copied a year's CAPAs into a PDF, one whose selection had outgrown
 * the limit by the time it ran. Run with `npx mocha test/exports/capture-histories.ts` after a deliberate change to
 * what a run records; commit the new files.
 */
import assert from 'node:assert/strict';
import { randomInt, randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { BulkExportExpiryInput, BulkExportInput, BulkExportResult } from '../../common/bulk-export';
import { workflowIds } from '../../common/ids';
import { fetchFixture, saveFixture } from '../../workers/replay';
import { createCapa } from '../capa/support';
import { startPlatform, type Platform } from '../helpers/platform';
import { historiesDir } from '../helpers/replay-suite';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';

const dir = historiesDir('bulk-export');

describe('capturing bulk-export replay fixtures from real runs', () => {
  let p: Platform;
  let u: Record<'qa' | 'doc', TestUser>;
  const year = randomInt(2100, 2900);

  before(async () => {
    mkdirSync(dir, { recursive: true });
    p = await startPlatform();
    u = await makeUsers({ qa: ['qa_manager'], doc: ['clinician'] });
    const { number } = await createCapa(p, u.doc, { title: 'Bulk export capture' });
    await testEnv()
      .db('capas')
      .where({ number })
      .update({ initiated_at: `${year}-05-01T00:00:00Z` });
  });
  after(() => p.stop());

  const save = async (name: string, workflowId: string) => saveFixture(join(dir, `${name}.json`), await fetchFixture(testEnv().client, workflowId));

  it("captures a completed export of a year's CAPAs as one PDF", async () => {
    const res = await p.api('POST', '/api/v1/bulk-exports', { key: u.qa.apiKey, body: { kind: 'capas', year, format: 'pdf' } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const result = (await testEnv().client.workflow.getHandle(res.body.workflowId).result()) as BulkExportResult;
    assert.equal(result.state, 'completed');
    assert.equal(result.total, 1);
    await save('completed-pdf', res.body.workflowId);
  });

  it('captures an export whose selection outgrew the limit before it ran: failed, naming the limit', async () => {
    const id = randomUUID();
    const qa = await testEnv().db('users').where({ username: u.qa.username }).first('id', 'username', 'printed_name');
    await testEnv()
      .db('bulk_exports')
      .insert({
        id,
        workflow_id: workflowIds.bulkExport(id),
        kind: 'capas',
        period: String(year),
        format: 'csv',
        requested_by_id: qa.id,
        requested_by: qa.username,
        requested_by_name: qa.printed_name,
        total: 0,
      });
    const result = (await testEnv().client.workflow.execute('bulkExportWorkflow', {
      workflowId: workflowIds.bulkExport(id),
      taskQueue: p.taskQueue,
      args: [{ exportId: id, maxRecords: 0 } satisfies BulkExportInput],
    })) as BulkExportResult;
    assert.equal(result.state, 'failed');
    const row = await waitFor(() => testEnv().db('bulk_exports').where({ id, state: 'failed' }).first(), 'the failed export');
    assert.match(row.error, /more than 0 records.*BULK_EXPORT_MAX_RECORDS/);
    await save('failed-too-large', workflowIds.bulkExport(id));
  });

  it('captures the hourly expiry deleting the file of an export older than the retention', async () => {
    const res = await p.api('POST', '/api/v1/bulk-exports', { key: u.qa.apiKey, body: { kind: 'capas', year, format: 'json' } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    await testEnv().client.workflow.getHandle(res.body.workflowId).result();
    await testEnv().db('bulk_exports').where({ id: res.body.id }).update({ finished_at: testEnv().db.raw(`now() - interval '8 days'`) });
    const workflowId = `bulk-export-expiry:capture-${randomUUID().slice(0, 6)}`;
    const result = (await testEnv().client.workflow.execute('bulkExportExpiryWorkflow', {
      workflowId,
      taskQueue: p.taskQueue,
      args: [{ retention: '7d' } satisfies BulkExportExpiryInput],
    })) as { expired: number };
    assert.ok(result.expired >= 1);
    await save('expiry-expired', workflowId);
  });
});
