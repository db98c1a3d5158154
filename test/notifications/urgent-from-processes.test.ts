import assert from 'node:assert/strict';
import { noticeWorkflowId } from '../../common/notifications';
import { createCapa, toImplementation } from '../capa/support';
import type { Platform } from '../helpers/platform';
import { startSlackWebhookServer } from '../helpers/slack-webhook-server';
import { startTwilioServer } from '../helpers/twilio-server';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { inspected, mustAct } from '../sample-intake/support';
import { testEnv } from '../setup/env';
import { addressesFor, deliveries, runResult, startNoticePlatform, type SlackServer, type TwilioServer } from './support';

/**
 * The business actions that raise urgent notices, end to end: the action through the API, its process's run writing
 * the notice with the change and starting the notice's run, and SMS and Slack at the wire (the local Twilio and Slack
 * servers), escalating along NOTIFY_ESCALATION_CHAIN until someone acknowledges.
 */
describe('urgent notices raised by the processes: a rejected sample, an overdue CAPA action', function () {
  this.timeout(300_000);
  let slack: SlackServer;
  let twilio: TwilioServer;
  let p: Platform;
  let u: Record<'doc' | 'tech' | 'qa' | 'owner' | 'initiator' | 'supervisor', TestUser>;
  const at: Record<string, ReturnType<typeof addressesFor>> = {};

  const reached = (name: keyof typeof u, text: string) =>
    slack.posts.some((m) => m.path === at[name].path && m.text.includes('URGENT') && m.text.includes(text)) &&
    twilio.sent.some((m) => m.to === at[name].phone && m.body.includes(text));
  /** The notice run's own record that SMS and Slack reached the person (not only the servers' requests). */
  const sentTo = async (noticeId: string, person: TestUser) =>
    (await deliveries(noticeId))
      .filter(
        (d: { user_id: string; channel: string; state: string }) =>
          d.user_id === person.actor.userId && d.state === 'sent' && (d.channel === 'sms' || d.channel === 'slack'),
      )
      .map((d: { channel: string }) => d.channel)
      .sort()
      .join() === 'slack,sms';

  before(async () => {
    slack = await startSlackWebhookServer();
    twilio = await startTwilioServer();
    u = await makeUsers({
      doc: ['clinician'],
      tech: ['lab_technician'],
      qa: ['qa_manager'],
      owner: ['lab_technician'],
      initiator: ['clinician'],
      supervisor: ['lab_director'],
    });
    // The chain after a notice's own people: the supervisor, then nobody; each step waits 20 s for an acknowledgement.
    p = await startNoticePlatform(slack, twilio, { ackTimeout: '20s', chain: [{ username: u.supervisor.username }] });
    for (const name of Object.keys(u) as (keyof typeof u)[]) {
      at[name] = addressesFor(slack);
      // Email only for normal notices: urgent ones go to SMS and Slack whatever a person chose.
      const res = await p.api('PUT', '/api/v1/me/notification-preferences', {
        key: u[name].apiKey,
        body: { channels: ['email'], slackWebhookUrl: at[name].url, phoneNumber: at[name].phone },
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    }
  });
  after(async () => {
    await p?.stop();
    await slack?.stop();
    await twilio?.stop();
  });

  it('a rejected sample reaches its submitter on SMS and Slack at once and, unacknowledged, escalates to the next of the chain', async () => {
    const { accession } = await inspected(p, u.doc, u.tech);
    await mustAct(p, u.tech, accession, 'accept');
    await mustAct(p, u.tech, accession, 'reject', { code: 'RN', condition: 'Visible contamination at the cap', disposition: 'discarded' });

    const notice = await waitFor(
      async () => testEnv().db('notices').where({ kind: 'sample.rejected', subject_id: accession }).first(),
      'the urgent notice written with the rejection',
    );
    assert.equal(notice.priority, 'urgent');
    await waitFor(() => sentTo(notice.id, u.doc), 'SMS and Slack to the submitter, recorded by the notice run', 60_000).catch(async (err) => {
      const state = await testEnv().db('notices').where({ id: notice.id }).first('state', 'step');
      throw new Error(`${(err as Error).message}; notice ${JSON.stringify(state)}, deliveries ${JSON.stringify(await deliveries(notice.id))}`);
    });
    assert.ok(reached('doc', accession), 'the submitter was reached at the wire, naming the specimen');
    const inApp = await testEnv().db('notifications').where({ user_id: u.doc.actor.userId, kind: 'sample.rejected' }).whereLike('title', `%${accession}%`);
    assert.equal(inApp.length, 1, 'the in-app record of the rejection, once');
    // SMS and Slack carry the reference and where to act, not the specimen's condition.
    assert.ok(!slack.posts.some((m) => m.path === at.doc.path && m.text.includes('contamination')));

    // Nobody acknowledges: the next step of the chain is told, and it acknowledges.
    await waitFor(() => sentTo(notice.id, u.supervisor), 'SMS and Slack to the next of the chain', 60_000);
    assert.ok(reached('supervisor', accession));
    const ack = await p.api('POST', `/api/v1/notices/${notice.id}/acknowledge`, { key: u.supervisor.apiKey });
    assert.equal(ack.status, 200, JSON.stringify(ack.body));
    const result = await runResult(noticeWorkflowId(notice.id));
    assert.deepEqual({ acknowledged: result.acknowledged, step: result.step }, { acknowledged: true, step: 1 });
    const escalated = await testEnv().db('audit_events').where({ action: 'notice.escalated' }).whereRaw(`details->>'noticeId' = ?`, [notice.id]);
    assert.equal(escalated.length, 1);
  });

  it('an overdue CAPA action reaches its owner and the triaging QA manager on SMS and Slack, and is acknowledged by the owner', async () => {
    const { number } = await createCapa(p, u.initiator);
    await toImplementation(
      p,
      u,
      number,
      [{ type: 'corrective', description: 'Replace tubes', owner: { user: u.owner.username }, dueAt: new Date(Date.now() + 30_000).toISOString() }],
      { containment: '1h', investigation: '1h', effectivenessWait: '1s', reminderBefore: '1s' },
    );
    const notice = await waitFor(
      async () => testEnv().db('notices').where({ kind: 'capa.overdue', subject_id: number }).first(),
      'the urgent notice written with the escalation',
      120_000,
    );
    assert.equal(notice.priority, 'urgent');
    for (const person of [u.owner, u.qa]) await waitFor(() => sentTo(notice.id, person), `SMS and Slack to ${person.username}`, 60_000);
    assert.ok(reached('owner', number) && reached('qa', number));
    const ack = await p.api('POST', `/api/v1/notices/${notice.id}/acknowledge`, { key: u.owner.apiKey });
    assert.equal(ack.status, 200, JSON.stringify(ack.body));
    const result = await runResult(noticeWorkflowId(notice.id));
    assert.equal(result.acknowledged, true);
    assert.equal((await testEnv().db('notices').where({ id: notice.id }).first()).acknowledged_by, u.owner.actor.userId);
    // The CAPA's in-app record keeps its wording.
    const notes = await testEnv().db('notifications').where({ kind: 'capa.overdue' }).whereLike('title', `%${number}%`).pluck('user_id');
    assert.deepEqual(notes.sort(), [u.owner.actor.userId, u.qa.actor.userId].sort());
  });
});
