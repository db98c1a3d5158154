import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { appendAudit } from '../../db/audit';
import { LISTENER_APPLICATION_NAME } from '../../db/credential-notices';
import { createPatient } from '../../db/patients';
import { openTask } from '../../db/tasks';
import { assertProblem } from '../api/support';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { rawStream, startApiProcess, subscribe, type ApiProcess } from './stream-support';
import { verifyBackup } from './support';

/** What an approved summary's activity writes with its audit event (IDs only), and so its summary.approved event. */
const approveSummary = (patientId: string) =>
  testEnv().appDb.transaction((trx) =>
    appendAudit(trx, {
      actor: 'system:test',
      action: 'summary.approved',
      entityType: 'patient',
      entityId: patientId,
      details: { summaryId: randomUUID(), round: 1 },
    }),
  );

const documentEffective = (number: string) =>
  testEnv().appDb.transaction((trx) =>
    appendAudit(trx, { actor: 'system:test', action: 'document.effective', entityType: 'document', entityId: number, details: { version: 1 } }),
  );

describe('live event stream: who receives what, heartbeats, revocation, resumption', function () {
  this.timeout(180_000);
  let p: ApiProcess;
  let u: Record<'carer' | 'stranger' | 'admin' | 'itop' | 'approver' | 'tech', TestUser>;

  before(async () => {
    p = await startApiProcess(`stream-access-${randomUUID().slice(0, 8)}`, { heartbeatMs: 300 });
    u = await makeUsers({
      carer: ['clinician'],
      stranger: ['clinician'],
      admin: ['admin'],
      itop: ['it_operator'],
      approver: ['approver'],
      tech: ['lab_technician'],
    });
  });
  after(async () => {
    await p?.stop();
  });

  it('sends each reader the events of records they may read, and no others', async () => {
    const patient = await createPatient(testEnv().appDb, u.carer.actor, { givenName: 'Stream', familyName: 'Canary', dateOfBirth: '1980-01-01' });
    const readers = Object.entries(u).map(([name, user]) => ({ name, stream: subscribe(p.baseUrl, user.apiKey) }));
    try {
      await waitFor(() => readers.every((r) => r.stream.opens() >= 1), 'every stream open');
      const backupId = await verifyBackup();
      const taskKey = `stream-test:${randomUUID()}`;
      await testEnv().appDb.transaction((trx) =>
        openTask(trx, {
          taskKey,
          workflowId: 'stream-test',
          entityType: 'document',
          entityId: 'DOC-STREAM',
          kind: 'document.review',
          title: 'not in the event',
          assignee: { kind: 'role', role: 'approver' },
        }),
      );
      await approveSummary(patient.id);
      // Last, seen by everyone: once a stream has it, it has had every event before it it was going to get.
      const marker = `DOC-MARK-${randomUUID().slice(0, 6)}`;
      await documentEffective(marker);
      await waitFor(
        () => readers.every((r) => r.stream.events.some((e) => e.type === 'document.effective' && e.data.entityId === marker)),
        'the marker on every stream',
      );
      const mine = (e: { type: string; data: Record<string, unknown> }) =>
        (e.type === 'backup.verified' && e.data.entityId === backupId) ||
        (e.type === 'task.assigned' && (e.data.data as { taskKey?: string }).taskKey === taskKey) ||
        (e.type === 'summary.approved' && e.data.entityId === patient.id) ||
        (e.type === 'document.effective' && e.data.entityId === marker);
      const got = Object.fromEntries(readers.map((r) => [r.name, r.stream.events.filter(mine).map((e) => e.type)]));
      assert.deepEqual(got, {
        carer: ['summary.approved', 'document.effective'],
        stranger: ['document.effective'],
        // Admin reads backups but not a patient's record, and the approvers' task is not theirs.
        admin: ['backup.verified', 'document.effective'],
        itop: ['backup.verified', 'document.effective'],
        approver: ['task.assigned', 'document.effective'],
        tech: ['document.effective'],
      });
      const summary = readers[0].stream.events.find((e) => e.type === 'summary.approved');
      assert.deepEqual(Object.keys((summary?.data.data ?? {}) as object).sort(), ['patientId', 'round', 'summaryId']);
    } finally {
      for (const r of readers) r.stream.close();
    }
  });

  it('answers as an event stream, with heartbeats as comment lines', async () => {
    const s = await rawStream(p.baseUrl, u.tech.apiKey);
    try {
      assert.equal(s.res.status, 200);
      assert.match(s.res.headers.get('content-type') ?? '', /^text\/event-stream/);
      assert.match(s.res.headers.get('cache-control') ?? '', /no-transform/);
      assert.equal(s.res.headers.get('x-accel-buffering'), 'no');
      await waitFor(() => s.text().split('\n').filter((l) => l === ': heartbeat').length >= 2, 'two heartbeats');
      assert.match(s.text(), /^retry: \d+\n\n: connected\n\n/);
    } finally {
      await s.close();
    }
  });

  it('ends a stream whose key is revoked, naming the reason', async () => {
    const made = await fetch(`${p.baseUrl}/api/v1/me/api-keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${u.tech.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'stream-revoked' }),
    }).then((r) => r.json() as Promise<{ key: string; id: string }>);
    const s = await rawStream(p.baseUrl, made.key);
    assert.equal(s.res.status, 200);
    await waitFor(() => s.text().includes(': connected'), 'the stream open');
    const revoked = await fetch(`${p.baseUrl}/api/v1/me/api-keys/${made.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${u.tech.apiKey}` } });
    assert.equal(revoked.status, 200);
    await waitFor(() => s.done(), 'the server ending the stream');
    assert.match(s.text(), /event: stream-ended\ndata: \{"reason":"credentials-refused"/);
    assert.ok(!s.text().includes('id: '), 'no event followed');
  });

  it("ends a deactivated user's streams", async () => {
    const { leaver } = await makeUsers({ leaver: ['author'] });
    const s = await rawStream(p.baseUrl, leaver.apiKey);
    await waitFor(() => s.text().includes(': connected'), 'the stream open');
    // What the user lifecycle does on deactivation, in one transaction.
    await testEnv().db.transaction(async (trx) => {
      await trx('users').where({ id: leaver.actor.userId }).update({ active: false });
      await trx.raw("select pg_notify('labflow_credentials', ?)", [JSON.stringify({ userId: leaver.actor.userId })]);
    });
    await waitFor(() => s.done(), 'the server ending the stream');
    assert.match(s.text(), /"reason":"credentials-refused"/);
  });

  it('refuses bad input with a problem: an unknown type, a Last-Event-ID that is no event ID, no credential', async () => {
    const get = async (path: string, headers: Record<string, string> = {}) => {
      const res = await fetch(`${p.baseUrl}${path}`, { headers });
      const text = await res.text();
      return { status: res.status, headers: res.headers, body: /json/.test(res.headers.get('content-type') ?? '') ? JSON.parse(text) : text };
    };
    const auth = { authorization: `Bearer ${u.tech.apiKey}` };
    assertProblem(await get('/api/v1/stream?type=nope', auth), 400, 'validation', 'query.type.0');
    assertProblem(await get('/api/v1/stream', { ...auth, 'last-event-id': 'abc' }), 400, 'validation', 'header.last-event-id');
    assertProblem(await get('/api/v1/stream?after=-1', auth), 400, 'validation', 'query.after');
    assertProblem(await get('/api/v1/stream'), 401, 'unauthenticated');
  });

  it('delivers an event committed while its listening connection was cut, once it listens again', async () => {
    const stream = subscribe(p.baseUrl, u.tech.apiKey);
    try {
      await waitFor(() => stream.opens() >= 1, 'the stream open');
      const cut = await testEnv().db.raw(
        'select pg_terminate_backend(pid) from pg_stat_activity where application_name = ? and datname = current_database()',
        [LISTENER_APPLICATION_NAME],
      );
      assert.ok(cut.rows.length >= 1, 'the listener was connected');
      // Most likely committed before the process listens again, so its notice reaches no one.
      const missed = `DOC-CUT-${randomUUID().slice(0, 6)}`;
      await documentEffective(missed);
      await waitFor(() => stream.events.some((e) => e.data.entityId === missed), 'the event after the reconnection', 60_000);
      assert.equal(stream.opens(), 1, 'the client stayed connected');
    } finally {
      stream.close();
    }
  });

  it('replays what came after Last-Event-ID, then goes on live, each event once', async () => {
    const before = `DOC-R1-${randomUUID().slice(0, 6)}`;
    await documentEffective(before);
    const seqOf = async (number: string) =>
      Number((await testEnv().db('domain_events').where({ entity_id: number }).first('seq')).seq);
    const from = (await seqOf(before)) - 1;
    const s = await rawStream(p.baseUrl, u.tech.apiKey, { 'last-event-id': String(from) });
    try {
      await waitFor(() => s.text().includes(`"entityId":"${before}"`), 'the replayed event');
      const after = `DOC-R2-${randomUUID().slice(0, 6)}`;
      await documentEffective(after);
      await waitFor(() => s.text().includes(`"entityId":"${after}"`), 'the live event');
      const ids = [...s.text().matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
      assert.deepEqual(ids, [...new Set(ids)].sort((a, b) => a - b), 'each event once, in order');
      assert.ok(ids[0] > from);
      assert.ok(ids.includes(await seqOf(after)));
    } finally {
      await s.close();
    }
  });
});
