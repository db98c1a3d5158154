import assert from 'node:assert/strict';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { csvRows, download } from '../exports/support';
import { labPlatform, mustAnalysisAct, routedSample, sign, testCode } from '../results/support';
import { callInState, enter, logAttempt, openedCall, routedWithProvider } from '../critical-calls/support';
import { assembledAndReleased, reportUrl } from './support';

interface TrailItem {
  seq: number;
  action: string;
  entity_type: string;
  entity_id: string;
  details: Record<string, unknown>;
}

const trailUrl = (accession: string, query = '') => `/api/v1/samples/${accession}/audit-trail${query}`;

/**
 * The sample's trail as the chain holds it, found another way than the route finds it: the sample's own events,
 * and every analysis, report and critical-value call event whose details name the accession, in seq order.
 */
async function chainEventsOf(accession: string, uptoSeq: number) {
  const rows = await testEnv()
    .db('audit_events')
    .where((q) =>
      q
        .where({ entity_type: 'sample', entity_id: accession })
        .orWhere((r) => r.whereIn('entity_type', ['analysis', 'report', 'critical_call']).andWhereRaw("details ->> 'accession' = ?", [accession])),
    )
    .andWhere('seq', '<=', uptoSeq)
    .orderBy('seq')
    .select('seq', 'entity_type', 'entity_id', 'action');
  return rows.map((r) => ({ seq: Number(r.seq), entity_type: r.entity_type, entity_id: r.entity_id, action: r.action }));
}

const shape = (items: TrailItem[]) => items.map((e) => ({ seq: e.seq, entity_type: e.entity_type, entity_id: e.entity_id, action: e.action }));

describe("a sample's audit trail holds its analyses', reports' and critical-value calls' events", function () {
  this.timeout(180_000);
  const lab = labPlatform();
  let others: Record<'provider' | 'stranger', TestUser>;
  before(async () => {
    others = await makeUsers({ provider: ['clinician'], stranger: ['clinician'] });
  });

  async function readAll(user: TestUser, accession: string, limit: number): Promise<{ pages: TrailItem[][]; items: TrailItem[] }> {
    const pages: TrailItem[][] = [];
    let after: number | null = 0;
    while (after !== null) {
      const res = await lab.p.api('GET', trailUrl(accession, `?after=${after}&limit=${limit}`), { key: user.apiKey });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.accession, accession);
      assert.ok(res.body.items.length <= limit);
      pages.push(res.body.items);
      after = res.body.next;
      if (after !== null) assert.equal(after, res.body.items[res.body.items.length - 1].seq);
      assert.ok(pages.length < 200, 'the trail ends');
    }
    return { pages, items: pages.flat() };
  }

  it('from registration to a released and corrected report with a confirmed critical call, a retest included, in chain order; paged; nothing of another sample', async () => {
    const { p, u } = lab;
    const { db } = testEnv();
    const [critical, retested, elsewhere] = [await testCode(), await testCode(), await testCode()];
    const accession = await routedWithProvider(p, u.doc, u.tech, [critical, retested], others.provider);
    // Another sample, worked on in between: its events interleave with this one's in the chain.
    const other = await routedSample(p, u.doc, u.tech, [elsewhere]);

    // A critical value, called to the ordering provider and read back.
    await enter(p, u.tech, accession, critical, 8.4);
    await enter(p, u.tech, other, elsewhere, 4.5);
    const call = await openedCall(accession, critical);
    const confirmed = await logAttempt(p, u.tech, accession, critical, {
      requestId: `trail-${call.id}`,
      called: 'ordering_provider',
      outcome: 'CONFIRMED',
      readBack: '8.4',
    });
    assert.equal(confirmed.status, 200, JSON.stringify(confirmed.body));
    await callInState(accession, critical, 'notified');
    await mustAnalysisAct(p, u.tech, accession, critical, 'submit');
    assert.equal((await sign(p, u.tech2, accession, critical, 'verify')).status, 200);

    // The other test retested: the original and its retest each have their own events.
    await enter(p, u.tech, accession, retested, 4.0);
    await mustAnalysisAct(p, u.tech, accession, retested, 'submit');
    await mustAnalysisAct(p, u.tech, accession, retested, 'retest');
    await enter(p, u.tech, accession, retested, 4.1);
    await mustAnalysisAct(p, u.tech, accession, retested, 'submit');
    assert.equal((await sign(p, u.tech2, accession, retested, 'verify')).status, 200);

    // Released, then corrected as v2 and released again.
    await assembledAndReleased(p, u.director, accession);
    const corrected = await p.api('POST', reportUrl(accession, 1, 'correct'), { key: u.director.apiKey, body: { reason: 'Collection time corrected' } });
    assert.equal(corrected.status, 202, JSON.stringify(corrected.body));
    await assembledAndReleased(p, u.director, accession, 2);
    await waitFor(
      async () => (await db('audit_events').where({ entity_type: 'report', entity_id: `report:${accession}:v2`, action: 'report.released' }).first('seq')) ?? null,
      'v2 released in the trail',
    );

    // The whole trail in one page: exactly the chain's events of the sample and its records, in seq order.
    const whole = await p.api('GET', trailUrl(accession, '?limit=1000'), { key: u.tech.apiKey });
    assert.equal(whole.status, 200, JSON.stringify(whole.body));
    assert.equal(whole.body.next, null);
    const items: TrailItem[] = whole.body.items;
    const last = items[items.length - 1].seq;
    assert.deepEqual(shape(items), await chainEventsOf(accession, last));
    for (let i = 1; i < items.length; i++) assert.ok(items[i].seq > items[i - 1].seq, 'oldest first, in chain order');

    const has = (entityType: string, entityId: string, action: string) =>
      assert.ok(
        items.some((e) => e.entity_type === entityType && e.entity_id === entityId && e.action === action),
        `${action} on ${entityType} ${entityId}`,
      );
    has('sample', accession, 'sample.registered');
    has('analysis', `analysis:${accession}:${critical}`, 'analysis.resulted');
    has('analysis', `analysis:${accession}:${critical}`, 'analysis.released');
    has('analysis', `analysis:${accession}:${retested}`, 'analysis.retest_requested');
    has('analysis', `analysis:${accession}:${retested}:2`, 'analysis.verified');
    has('critical_call', call.workflow_id, 'critical_call.opened');
    has('critical_call', call.workflow_id, 'critical_call.attempt_logged');
    has('critical_call', call.workflow_id, 'critical_call.notified');
    has('report', `report:${accession}:v1`, 'report.released');
    has('report', `report:${accession}:v2`, 'report.correction_requested');
    has('report', `report:${accession}:v2`, 'report.released');
    // The call's events come after the critical value that opened it, and the report's after the verifications.
    const seqOf = (entityId: string, action: string) => items.find((e) => e.entity_id === entityId && e.action === action)!.seq;
    assert.ok(seqOf(`analysis:${accession}:${critical}`, 'analysis.resulted') < seqOf(call.workflow_id, 'critical_call.opened'));
    assert.ok(seqOf(`analysis:${accession}:${retested}:2`, 'analysis.verified') < seqOf(`report:${accession}:v1`, 'report.assembled'));

    // Nothing of the other sample, whose events lie between these in the chain.
    const otherEvents = await chainEventsOf(other, Number.MAX_SAFE_INTEGER);
    assert.ok(otherEvents.some((e) => e.entity_type === 'analysis' && e.seq > items[0].seq && e.seq < last), 'the samples interleave');
    assert.ok(items.every((e) => e.entity_id !== other && !e.entity_id.includes(`:${other}:`) && e.details.accession !== other));
    const otherTrail = (await p.api('GET', trailUrl(other, '?limit=1000'), { key: u.tech.apiKey })).body.items as TrailItem[];
    assert.ok(otherTrail.some((e) => e.entity_id === `analysis:${other}:${elsewhere}`), "the other sample's trail has its own analysis");
    assert.ok(otherTrail.every((e) => !e.entity_id.includes(accession)));

    // Page by page, three events at a time: the same events, each page's `next` the `after` of the one after it.
    const paged = await readAll(u.tech, accession, 3);
    assert.ok(paged.pages.length > 3);
    const upToWhole = paged.items.filter((e) => e.seq <= last);
    assert.deepEqual(shape(upToWhole), shape(items));
    assert.deepEqual(shape(paged.items), await chainEventsOf(accession, paged.items[paged.items.length - 1].seq));
    assert.ok(
      paged.pages.some((page) => new Set(page.map((e) => e.entity_type)).size > 1),
      'a page spans the events of more than one record',
    );
  });

  it('is read by the submitting clinician, each read a PHI access event; another clinician, even the ordering provider, gets 403, logged as denied', async () => {
    const { p, u } = lab;
    const { db } = testEnv();
    const test = await testCode();
    const accession = await routedWithProvider(p, u.doc, u.tech, [test], others.provider);
    await enter(p, u.tech, accession, test, 4.4);
    await waitFor(
      async () => (await db('audit_events').where({ entity_type: 'analysis', entity_id: `analysis:${accession}:${test}`, action: 'analysis.resulted' }).first('seq')) ?? null,
      'the result in the trail',
    );

    const mine = await p.api('GET', trailUrl(accession), { key: u.doc.apiKey });
    assert.equal(mine.status, 200, JSON.stringify(mine.body));
    assert.ok(mine.body.items.some((e: TrailItem) => e.entity_type === 'analysis' && e.action === 'analysis.resulted'));
    const read = await db('phi_access_events').where({ username: u.doc.username, record_kind: 'audit_trail' }).whereRaw('? = any(record_ids)', [accession]);
    assert.deepEqual(
      read.map((r) => [r.outcome, r.record_ids, r.route]),
      [['read', [accession], '/api/v1/samples/:accession/audit-trail']],
    );

    for (const who of [others.stranger, others.provider]) {
      const refused = await p.api('GET', trailUrl(accession), { key: who.apiKey });
      assert.equal(refused.status, 403, JSON.stringify(refused.body));
      assert.equal(refused.body.items, undefined);
      const denied = await db('phi_access_events').where({ username: who.username, record_kind: 'audit_trail' });
      assert.deepEqual(
        denied.map((r) => [r.outcome, r.record_ids]),
        [['denied', [accession]]],
      );
    }
    assert.equal((await p.api('GET', trailUrl('ACC-99999999'), { key: u.tech.apiKey })).status, 404);
  });

  it("puts the same events in the sample's export, each naming its record", async () => {
    const { p, u } = lab;
    const test = await testCode();
    const accession = await routedWithProvider(p, u.doc, u.tech, [test], others.provider);
    await enter(p, u.tech, accession, test, 1.9);
    const call = await openedCall(accession, test);
    await waitFor(
      async () =>
        (await testEnv().db('audit_events').where({ entity_type: 'critical_call', entity_id: call.workflow_id, action: 'critical_call.opened' }).first('seq')) ??
        null,
      'the call in the trail',
    );

    const json = await download(p, u.tech, `/api/v1/samples/${accession}/export?format=json`);
    assert.equal(json.status, 200);
    const trail: { seq: number; action: string; entityType: string; entityId: string }[] = JSON.parse(json.bytes.toString('utf8')).trail;
    const last = trail[trail.length - 1].seq;
    assert.deepEqual(
      trail.map((e) => ({ seq: e.seq, entity_type: e.entityType, entity_id: e.entityId, action: e.action })),
      await chainEventsOf(accession, last),
    );
    assert.ok(trail.some((e) => e.entityType === 'critical_call' && e.action === 'critical_call.opened'));

    const csv = csvRows((await download(p, u.tech, `/api/v1/samples/${accession}/export?format=csv`)).bytes);
    const audit = csv.filter((r) => r.section === 'audit');
    assert.ok(audit.some((r) => r.what === `critical_call.opened on critical_call ${call.workflow_id}`), 'another record is named');
    assert.ok(audit.some((r) => r.what === 'sample.registered'), "the sample's own events are not");
  });
});
