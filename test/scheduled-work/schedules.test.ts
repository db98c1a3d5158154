import assert from 'node:assert/strict';
import { ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import { testEnv } from '../setup/env';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { reconcileSchedules, scheduleDefinitions, type ScheduleDefinition } from '../../workers/schedules';
import { testBackupSettings, uniqueSuffix } from './support';

describe('schedules as configuration', () => {
  let p: Platform;
  let users: Record<'ops' | 'qa' | 'author', TestUser>;
  const owner = `test-${uniqueSuffix()}`;
  const created: string[] = [];

  before(async () => {
    p = await startPlatform();
    users = await makeUsers({ ops: ['it_operator'], qa: ['qa_manager'], author: ['author'] });
  });
  after(async () => {
    for (const id of created)
      await testEnv()
        .client.schedule.getHandle(id)
        .delete()
        .catch(() => undefined);
    await p.stop();
  });

  async function definitions(): Promise<ScheduleDefinition[]> {
    const all = scheduleDefinitions({
      taskQueue: p.taskQueue,
      timeZone: 'Europe/Berlin',
      backup: await testBackupSettings(),
      outboxDir: null,
    });
    const suffix = uniqueSuffix();
    // Test-owned copies, started paused so nothing fires while the test looks at them.
    return all.map((d) => ({ ...d, scheduleId: `${d.scheduleId}-${suffix}`, startPaused: true }));
  }
  const describeOrNull = (id: string) =>
    testEnv()
      .client.schedule.getHandle(id)
      .describe()
      .catch((err) => (err instanceof ScheduleNotFoundError ? null : Promise.reject(err)));

  it('creates every listed schedule, then finds nothing to change on a second run', async () => {
    const defs = await definitions();
    created.push(...defs.map((d) => d.scheduleId));
    const first = await reconcileSchedules(testEnv().client, defs, { taskQueue: p.taskQueue, owner });
    assert.deepEqual(first.created.sort(), defs.map((d) => d.scheduleId).sort());
    const backup = await describeOrNull(defs[1].scheduleId);
    assert.equal(backup?.state.paused, true);
    assert.equal(backup?.policies.overlap, ScheduleOverlapPolicy.SKIP);
    assert.equal(backup?.spec.timezone, 'Europe/Berlin');
    const second = await reconcileSchedules(testEnv().client, defs, { taskQueue: p.taskQueue, owner });
    assert.deepEqual(second.created, []);
    assert.deepEqual(second.updated, []);
    assert.equal(second.unchanged.length, defs.length);
  });

  it('reports drift and updates a changed entry, keeping an operator pause', async () => {
    const defs = await definitions();
    created.push(...defs.map((d) => d.scheduleId));
    await reconcileSchedules(testEnv().client, defs, { taskQueue: p.taskQueue, owner });
    const changed = defs.map((d, i) =>
      i === 1 ? { ...d, spec: { ...d.spec, calendars: [{ hour: 3, minute: 30 }] }, overlap: ScheduleOverlapPolicy.BUFFER_ONE } : d,
    );
    const dry = await reconcileSchedules(testEnv().client, changed, { taskQueue: p.taskQueue, owner, dryRun: true });
    assert.deepEqual(dry.updated, [{ scheduleId: defs[1].scheduleId, drift: ['definition', 'overlap'] }]);
    assert.equal((await describeOrNull(defs[1].scheduleId))?.policies.overlap, ScheduleOverlapPolicy.SKIP, 'a dry run changes nothing');
    const applied = await reconcileSchedules(testEnv().client, changed, { taskQueue: p.taskQueue, owner });
    assert.equal(applied.updated.length, 1);
    const after = await describeOrNull(defs[1].scheduleId);
    assert.equal(after?.policies.overlap, ScheduleOverlapPolicy.BUFFER_ONE);
    assert.deepEqual(
      after?.spec.calendars?.map((c) => [c.hour, c.minute]),
      [[[{ start: 3, end: 3, step: 1 }], [{ start: 30, end: 30, step: 1 }]]],
    );
    assert.equal(after?.state.paused, true);
    assert.equal((await reconcileSchedules(testEnv().client, changed, { taskQueue: p.taskQueue, owner })).updated.length, 0);
  });

  it('deletes a schedule it owns once its entry is removed, and leaves other owners alone', async () => {
    const defs = await definitions();
    created.push(...defs.map((d) => d.scheduleId));
    await reconcileSchedules(testEnv().client, defs, { taskQueue: p.taskQueue, owner });
    const foreign = (await definitions())[0];
    created.push(foreign.scheduleId);
    await reconcileSchedules(testEnv().client, [foreign], { taskQueue: p.taskQueue, owner: `${owner}-other` });
    const removed = defs[defs.length - 1].scheduleId;
    // Listing goes through visibility, which is eventually consistent: wait until the new schedules are listed.
    await waitFor(async () => {
      const ids: string[] = [];
      for await (const s of testEnv().client.schedule.list()) ids.push(s.scheduleId);
      return ids.includes(removed) && ids.includes(foreign.scheduleId);
    }, 'schedules listed');
    const report = await reconcileSchedules(testEnv().client, defs.slice(0, -1), { taskQueue: p.taskQueue, owner });
    assert.ok(report.deleted.includes(removed));
    assert.ok(!report.deleted.includes(foreign.scheduleId));
    assert.equal(await describeOrNull(removed), null);
    assert.notEqual(await describeOrNull(foreign.scheduleId), null);
  });

  it('computes next runs in the lab time zone across a DST change (02:00 Berlin is 01:00Z in winter, 00:00Z in summer)', async () => {
    const [, backup] = await definitions();
    const id = backup.scheduleId;
    created.push(id);
    // Start the spec shortly before the EU change to summer time on 2027-03-28, so the next runs straddle it.
    await testEnv().client.schedule.create({
      scheduleId: id,
      spec: { ...backup.spec, startAt: new Date('2027-03-25T12:00:00Z') },
      action: {
        type: 'startWorkflow',
        workflowType: backup.workflowType,
        workflowId: backup.workflowId,
        taskQueue: p.taskQueue,
        args: backup.args,
      },
      state: { paused: true },
    });
    const next = (await describeOrNull(id))!.info.nextActionTimes.map((t) => t.toISOString());
    assert.equal(next[0], '2027-03-26T01:00:00.000Z');
    assert.equal(next[1], '2027-03-27T01:00:00.000Z');
    // 02:00 does not exist on the 28th (clocks jump from 02:00 to 03:00); from the 29th it is 00:00Z.
    assert.ok(next.includes('2027-03-29T00:00:00.000Z'), next.join(', '));
    const berlin = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', hour: '2-digit', minute: '2-digit' });
    for (const t of next.filter((t) => !t.startsWith('2027-03-28'))) assert.equal(berlin.format(new Date(t)), '02:00', t);
  });

  it('lets an IT operator list, pause with a reason (audited), unpause, trigger and backfill over the API', async () => {
    const defs = await definitions();
    const canary = defs.find((d) => d.workflowType === 'healthCanaryWorkflow')!;
    created.push(canary.scheduleId);
    await reconcileSchedules(testEnv().client, [canary], { taskQueue: p.taskQueue, owner });
    const key = users.ops.apiKey;

    const listed = await waitFor(async () => {
      const res = await p.api('GET', '/api/v1/schedules', { key: users.qa.apiKey });
      return res.body.schedules?.find((s: { scheduleId: string }) => s.scheduleId === canary.scheduleId);
    }, 'schedule in the list');
    assert.equal(listed.paused, true);
    assert.ok(listed.nextActionTimes.length > 0);

    assert.equal(
      (await p.api('POST', `/api/v1/schedules/${canary.scheduleId}/unpause`, { key: users.author.apiKey, body: { reason: 'x' } })).status,
      403,
    );
    assert.equal((await p.api('POST', `/api/v1/schedules/${canary.scheduleId}/pause`, { key, body: {} })).status, 400);
    assert.equal((await p.api('POST', '/api/v1/schedules/no-such-schedule/pause', { key, body: { reason: 'x' } })).status, 404);

    const unpaused = await p.api('POST', `/api/v1/schedules/${canary.scheduleId}/unpause`, { key, body: { reason: 'go live' } });
    assert.equal(unpaused.status, 200);
    assert.equal(unpaused.body.paused, false);
    const paused = await p.api('POST', `/api/v1/schedules/${canary.scheduleId}/pause`, { key, body: { reason: 'database maintenance' } });
    assert.equal(paused.body.paused, true);
    assert.match(paused.body.note, /database maintenance/);
    const audit = await testEnv().db('audit_events').where({ entity_type: 'schedule', entity_id: canary.scheduleId }).orderBy('seq');
    assert.deepEqual(
      audit.map((e) => [e.action, e.details.reason, e.actor]),
      [
        ['schedule.unpaused', 'go live', users.ops.username],
        ['schedule.paused', 'database maintenance', users.ops.username],
      ],
    );

    const triggered = await p.api('POST', `/api/v1/schedules/${canary.scheduleId}/trigger`, { key, body: { reason: 'check the path' } });
    assert.equal(triggered.status, 202);
    const ran = await waitFor(async () => {
      const d = (await p.api('GET', `/api/v1/schedules/${canary.scheduleId}`, { key })).body;
      return d.recentActions.length >= 1 ? d : null;
    }, 'the triggered run');
    await testEnv().client.workflow.getHandle(ran.recentActions[0].workflowId).result();

    const bad = await p.api('POST', `/api/v1/schedules/${canary.scheduleId}/backfill`, {
      key,
      body: { start: '2026-11-02T00:00:00Z', end: '2026-11-01T00:00:00Z', reason: 'x' },
    });
    assert.equal(bad.status, 400);
    const tooLong = await p.api('POST', `/api/v1/schedules/${canary.scheduleId}/backfill`, {
      key,
      body: { start: '2026-01-01T00:00:00Z', end: '2026-11-01T00:00:00Z', reason: 'everything since January' },
    });
    assert.equal(tooLong.status, 422);
    assert.equal(tooLong.body.type, 'urn:labflow:problem:backfill-window-too-long');
    // Backfills skip an action while the one before still runs unless told otherwise; these runs may overlap.
    const backfill = await p.api('POST', `/api/v1/schedules/${canary.scheduleId}/backfill`, {
      key,
      body: { start: '2026-11-01T00:00:00Z', end: '2026-11-01T00:12:00Z', reason: 'missed during the outage', overlap: 'allow_all' },
    });
    assert.equal(backfill.status, 202);
    // Every 5 minutes over 12 minutes: 00:00, 00:05, 00:10 → three more runs.
    await waitFor(
      async () => (await p.api('GET', `/api/v1/schedules/${canary.scheduleId}`, { key })).body.numActionsTaken >= 4,
      'backfilled runs',
    );
  });
});
