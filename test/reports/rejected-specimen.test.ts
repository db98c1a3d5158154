import assert from 'node:assert/strict';
import { pdfText } from '../exports/support';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { inspected, mustAct } from '../sample-intake/support';
import { labPlatform, routedSample, testCode } from '../results/support';
import { assembled, pdfOf, release, reportUrl, runClosed } from './support';

/**
 * 42 CFR 493.1291(c)(7): the report shows the condition and disposition of a specimen that did not meet the lab's
 * criteria. A specimen rejected in full (before or after its tests were routed) is reported too: v1 is assembled
 * with the rejection and each test it took, and the lab director releases it like any report.
 */
describe('reports: a specimen rejected in full is reported with its condition and disposition', function () {
  this.timeout(180_000);
  const lab = labPlatform();

  const releasedText = async (accession: string) => {
    const { p, u } = lab;
    const shown = await assembled(p, u.director, accession);
    assert.equal(shown.state, 'awaiting_release');
    assert.deepEqual(shown.unverified, []);
    const released = await release(p, u.director, accession, 1);
    assert.equal(released.status, 200, JSON.stringify(released.body));
    const pdf = await pdfOf(p, u.doc, accession, 1);
    assert.equal(pdf.status, 200);
    return { shown, text: await pdfText(pdf.bytes) };
  };

  it('after routing: every test cancelled by the rejection, v1 shows them not reported, the condition and the disposition', async () => {
    const { p, u } = lab;
    const [a, b] = [await testCode(), await testCode()];
    const accession = await routedSample(p, u.doc, u.tech, [a, b]);
    await mustAct(p, u.tech, accession, 'reject', { code: 'RB', condition: 'Tube cracked in transit', disposition: 'discarded' });
    await runClosed(`analysis:${accession}:${a}`);
    await runClosed(`analysis:${accession}:${b}`);
    const { shown, text } = await releasedText(accession);
    assert.deepEqual(
      shown.content.tests.map((t: { test: string; state: string; result: unknown; reason: string }) => [
        t.test,
        t.state,
        t.result,
        t.reason,
      ]),
      [a, b].sort().map((t) => [t, 'cancelled', null, 'specimen rejected']),
    );
    assert.equal(shown.content.rejections.length, 1);
    for (const needed of ['Tube cracked in transit', 'Disposition', 'discarded', 'not reported: cancelled (specimen rejected)', a, b]) {
      assert.ok(text.includes(needed), `the report shows ${needed}`);
    }
    const versions = await testEnv().db('reports').where({ accession }).select('version', 'state');
    assert.deepEqual(versions, [{ version: 1, state: 'released' }], 'one report, however many runs found it due');
  });

  it('at inspection, before any test was routed: v1 shows the tests the rejection took, the condition and the disposition', async () => {
    const { p, u } = lab;
    const test = await testCode();
    const { accession } = await inspected(p, u.doc, u.tech, { tests: [test] }, { hemolyzed: true });
    await mustAct(p, u.tech, accession, 'reject', { code: 'RH', condition: 'Grossly hemolysed', disposition: 'discarded' });
    const { shown, text } = await releasedText(accession);
    assert.deepEqual(shown.content.tests, []);
    assert.deepEqual(shown.content.rejections, [{ tests: [test], code: 'RH', condition: 'Grossly hemolysed', disposition: 'discarded' }]);
    for (const needed of ['No test was performed: the specimen was rejected', 'Grossly hemolysed', 'discarded', test]) {
      assert.ok(text.includes(needed), `the report shows ${needed}`);
    }
    // The submitter is told, as for any released report.
    await waitFor(
      async () =>
        (await testEnv()
          .db('notifications')
          .where({ user_id: u.doc.actor.userId, kind: 'report.released' })
          .whereLike('title', `%${accession}%`)
          .first('id')) ?? null,
      'the submitter told',
    );
  });

  it('a partial rejection alone does not start a report: the tests still open keep it waiting', async () => {
    const { p, u } = lab;
    const [kept, rejected] = [await testCode(), await testCode()];
    const accession = await routedSample(p, u.doc, u.tech, [kept, rejected]);
    await mustAct(p, u.tech, accession, 'reject', {
      code: 'QS',
      condition: 'Too little left',
      disposition: 'discarded',
      tests: [rejected],
    });
    await runClosed(`analysis:${accession}:${rejected}`);
    assert.equal((await p.api('GET', reportUrl(accession, 1), { key: u.director.apiKey })).status, 404);
  });
});
