import assert from 'node:assert/strict';
import { testEnv } from '../setup/env';
import { approve, createDraft, getVersion, submit, versionPath, waitForState } from '../helpers/documents';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';

/** Durations are inputs, so these tests pass seconds where a lab would pass days (document control may shorten them). */
describe('document approval: deadlines, reminders and effective dates', () => {
  let p: Platform;
  let u: Record<'author' | 'rita' | 'control', TestUser>;

  before(async () => {
    p = await startPlatform();
    u = await makeUsers({ author: ['author'], rita: ['reviewer'], control: ['document_control'] });
  });
  after(() => p.stop());

  const auditActions = async (number: string) =>
    (await testEnv().db('audit_events').where({ entity_type: 'document', entity_id: number }).orderBy('seq').pluck('action')) as string[];

  it('reminds the assignee before the due date and escalates to document control when overdue, never approving', async () => {
    const { number } = await createDraft(p, u.author);
    await submit(p, u.control, number, 1, {
      routing: [{ name: 'Review', assignees: [{ user: u.rita.username }], due: '4s' }],
      reminderBefore: '2s',
    });
    await waitFor(async () => (await auditActions(number)).includes('document.stage_overdue'), 'escalation', 20_000);
    const actions = await auditActions(number);
    assert.ok(actions.indexOf('document.stage_reminder') < actions.indexOf('document.stage_overdue'), 'the reminder came first');
    const ritaNotes = await p.api('GET', '/api/v1/notifications', { key: u.rita.apiKey });
    assert.ok(ritaNotes.body.items.some((n: { kind: string }) => n.kind === 'document.review_reminder'));
    const controlNotes = await p.api('GET', '/api/v1/notifications', { key: u.control.apiKey });
    assert.ok(
      controlNotes.body.items.some(
        (n: { kind: string; title: string }) => n.kind === 'document.review_overdue' && n.title.includes(number),
      ),
    );
    const v = await getVersion(p, u.author.apiKey, number, 1);
    assert.equal(v.state, 'in_review', 'an overdue stage waits for people, it is never approved by the clock');
    assert.equal(v.process.stages[0].escalated, true);
  });

  it('moves the deadline when document control extends it, with the reminder re-armed', async () => {
    const { number } = await createDraft(p, u.author);
    await submit(p, u.control, number, 1, {
      routing: [{ name: 'Review', assignees: [{ user: u.rita.username }], due: '10s' }],
      reminderBefore: '1s',
    });
    await waitFor(async () => (await getVersion(p, u.author.apiKey, number, 1)).process?.stages[0].status === 'active', 'stage active');
    // The re-armed reminder falls 14 s after the extension, so after the original due date (10 s after the stage
    // opened): once it is recorded, the run has lived past the old deadline, and an escalation for it would already
    // be in the trail. The extension itself comes well inside the original 10 s, even on a slow machine.
    const dueAt = new Date(Date.now() + 15_000).toISOString();
    const res = await p.api('POST', `${versionPath(number, 1)}/extend`, {
      key: u.control.apiKey,
      body: { dueAt, reason: 'Reviewer at an audit this week' },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.dueAt, dueAt);
    const trail = async () =>
      (await testEnv()
        .db('audit_events')
        .where({ entity_type: 'document', entity_id: number })
        .orderBy('seq')
        .select('action', 'details')) as { action: string; details: { dueAt?: string } }[];
    const events = await waitFor(
      async () => {
        const all = await trail();
        return all.some((e) => e.action === 'document.stage_reminder' && e.details.dueAt === dueAt) ? all : null;
      },
      'the reminder for the new due date',
      45_000,
    );
    const actions = events.map((e) => e.action);
    assert.ok(actions.indexOf('document.stage_extended') < actions.lastIndexOf('document.stage_reminder'), 'reminded after the extension');
    assert.deepEqual(
      events.filter((e) => e.action === 'document.stage_overdue' && e.details.dueAt !== dueAt),
      [],
      'no escalation for the deadline that moved',
    );
    const task = await testEnv()
      .db('tasks')
      .where({ workflow_id: `document-approval:${number}:v1`, state: 'open' })
      .first('due_at');
    assert.equal(task.due_at.toISOString(), dueAt);
  });

  it('waits durably for the effective date, then opens a periodic review that document control completes', async () => {
    const { number, contentHash } = await createDraft(p, u.author);
    // Far enough ahead that the signed approval lands before it and the run is seen waiting in 'approved'.
    const effectiveDate = new Date(Date.now() + 15_000).toISOString();
    await submit(p, u.control, number, 1, {
      routing: [{ name: 'Review', assignees: [{ user: u.rita.username }] }],
      effectiveDate,
      periodicReview: '3s',
    });
    await waitFor(async () => (await getVersion(p, u.author.apiKey, number, 1)).process?.stages[0].status === 'active', 'stage active');
    assert.equal((await approve(p, u.rita, number, 1, contentHash)).status, 200);
    const approved = await waitForState(p, u.author.apiKey, number, 1, 'approved');
    assert.equal(approved.dueAt, effectiveDate, 'the effective date is the next thing due');
    const effective = await waitForState(p, u.author.apiKey, number, 1, 'effective', 40_000);
    assert.ok(Date.parse(effective.process.effectiveAt) >= Date.parse(effectiveDate));

    // The run shows the review as open only once document control's task for it is written: no wait for the list.
    await waitFor(async () => (await getVersion(p, u.author.apiKey, number, 1)).process?.periodicReviewOpen, 'periodic review due', 15_000);
    const tasks = await p.api('GET', '/api/v1/tasks?mine=1&state=open', { key: u.control.apiKey });
    assert.ok(
      tasks.body.items.some((t: { kind: string; entity_id: string }) => t.kind === 'document.periodic_review' && t.entity_id === number),
    );
    const done = await p.api('POST', `${versionPath(number, 1)}/periodic-review`, {
      key: u.control.apiKey,
      body: { comment: 'Still accurate' },
    });
    assert.equal(done.status, 200, JSON.stringify(done.body));
    assert.equal(done.body.periodicReviewOpen, false);
    assert.ok((await auditActions(number)).includes('document.periodic_review_completed'));

    const obsolete = await p.api('POST', `${versionPath(number, 1)}/obsolete`, {
      key: u.control.apiKey,
      body: { reason: 'Method retired' },
    });
    assert.equal(obsolete.status, 200, JSON.stringify(obsolete.body));
    assert.equal(obsolete.body.state, 'obsolete');
  });
});
