import assert from 'node:assert/strict';
import { oneStage } from '../api/support';
import { createDraft, submit } from '../helpers/documents';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { startApiProcess, subscribe, type ApiProcess } from './stream-support';
import { verifyBackup } from './support';

/**
 * Two API processes, each with its own LISTEN connection and its own streams, and a real EventSource client: an
 * event caused through one reaches a stream on the other; a stream whose process restarts resumes where it was.
 */
describe('live event stream across API processes', function () {
  this.timeout(240_000);
  let a: Platform;
  let b: ApiProcess;
  let u: Record<'author' | 'reviewer' | 'qa', TestUser>;

  before(async () => {
    a = await startPlatform();
    b = await startApiProcess(a.taskQueue, {});
    u = await makeUsers({ author: ['author'], reviewer: ['reviewer'], qa: ['qa_manager'] });
  });
  after(async () => {
    await b?.stop();
    await a?.stop();
  });

  it('a task opened by a document submitted through one process reaches its reviewer on the other', async () => {
    const stream = subscribe(b.baseUrl, u.reviewer.apiKey);
    try {
      await waitFor(() => stream.opens() >= 1, 'the stream open on the second process');
      const draft = await createDraft(a, u.author);
      await submit(a, u.author, draft.number, draft.version, oneStage([u.reviewer]));
      const event = await waitFor(
        () => stream.events.find((e) => e.type === 'task.assigned' && e.data.entityId === draft.number),
        'the task.assigned event on the other process',
        60_000,
      );
      const data = event.data.data as Record<string, unknown>;
      assert.equal(data.assigneeUserId, u.reviewer.actor.userId);
      assert.equal(data.entityType, 'document');
      assert.equal(event.id, String(event.data.seq));
    } finally {
      stream.close();
    }
  });

  it('resumes after the process serving the stream restarts: no event lost, none twice, in commit order', async () => {
    const stream = subscribe(b.baseUrl, u.qa.apiKey, '?type=backup.verified');
    const mine: string[] = [];
    const received = () => stream.events.filter((e) => mine.includes(e.data.entityId as string)).map((e) => e.data.entityId);
    try {
      await waitFor(() => stream.opens() >= 1, 'the stream open');
      for (let i = 0; i < 2; i++) mine.push(await verifyBackup());
      await waitFor(() => received().length === 2, 'the first two events');

      const port = b.port;
      await b.stop();
      await waitFor(() => stream.ended.includes('shutting-down'), 'the stream told why it ended');
      // Committed while no process serves the stream.
      for (let i = 0; i < 3; i++) mine.push(await verifyBackup());
      b = await startApiProcess(a.taskQueue, {}, port);

      await waitFor(() => received().length === 5, 'the events of the restart, replayed after Last-Event-ID', 60_000);
      assert.ok(stream.opens() >= 2, 'the client reconnected');
      mine.push(await verifyBackup());
      await waitFor(() => received().length === 6, 'a live event after the replay');

      assert.deepEqual(received(), mine);
      const ids = stream.events.map((e) => Number(e.id));
      assert.deepEqual(ids, [...new Set(ids)].sort((x, y) => x - y), 'every event once, in seq order');
      assert.ok(stream.events.every((e) => e.type === 'backup.verified'));
    } finally {
      stream.close();
    }
  });
});
