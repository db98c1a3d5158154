/**
 * Drives the instrument path on the test server and saves its histories as replay fixtures: an analysis an
 * instrument reported, submitted by the instrument path and autoverified at once, that started the sample's report
 * (released); a person's submission autoverified that started the report; and a sample rejected in full after
 * routing whose run started its report. Run with `npx mocha test/results/capture-instrument-histories.ts` after a
 * deliberate change; commit the new files. Each file is checked to hold no result value, performer or instrument.
 */
import assert from 'node:assert/strict';
import { webhookSignature } from '../../api/routes/sample-intake-webhooks';
import { makeUsers } from '../helpers/users';
import { mustAct, tag } from '../sample-intake/support';
import { assembled, release, runClosed } from '../reports/support';
import { approvedRules, fixtureSaver, labPlatform, mustAnalysisAct, routedSample, testCode } from './support';

const SECRET = { value: 4.4321, performedBy: 'PerformerFixtureName', instrument: 'InstrumentFixtureId' };
const save = fixtureSaver([String(SECRET.value), SECRET.performedBy, SECRET.instrument]);

describe('capturing instrument-submission and rejected-specimen replay fixtures from real runs', function () {
  this.timeout(180_000);
  const lab = labPlatform();

  it('records the instrument path autoverified and reported, a person’s autoverified submission, and a rejection reported', async () => {
    const { p, u } = lab;
    const test = await testCode();
    await approvedRules(p, u.director, test, { blockedInstrumentFlags: [] });
    const { admin } = await makeUsers({ admin: ['admin'] });
    const source = await p.api('POST', '/api/v1/sample-sources', {
      key: admin.apiKey,
      body: { name: `analyser-${tag()}`, contact: u.tech3.username },
    });
    assert.equal(source.status, 201, JSON.stringify(source.body));

    // The instrument path: reported through the signed inbox, submitted by it, autoverified, reported, released.
    const reported = await routedSample(p, u.doc, u.tech, [test]);
    const raw = JSON.stringify({
      eventId: `msg-${tag()}`,
      type: 'result.reported',
      accession: reported,
      test,
      messageId: `MSH-${tag()}`,
      result: { kind: 'numeric', unit: 'mmol/L', ...SECRET },
    });
    const timestamp = String(Math.floor(Date.now() / 1000));
    const posted = await p.api('POST', `/api/v1/webhooks/${source.body.name}`, {
      raw,
      headers: {
        'x-labflow-timestamp': timestamp,
        'x-labflow-signature': `sha256=${webhookSignature(source.body.secret, timestamp, raw)}`,
      },
    });
    assert.equal(posted.status, 202, JSON.stringify(posted.body));
    assert.equal(posted.body.analysisState, 'verified');
    await assembled(p, u.director, reported);
    assert.equal((await release(p, u.director, reported, 1)).status, 200);

    // A person's submission the rule set verifies: it starts the report too.
    const typed = await routedSample(p, u.doc, u.tech, [test]);
    await mustAnalysisAct(p, u.tech, typed, test, 'result', { kind: 'numeric', unit: 'mmol/L', ...SECRET });
    assert.equal((await mustAnalysisAct(p, u.tech, typed, test, 'submit')).state, 'verified');
    await assembled(p, u.director, typed);
    assert.equal((await release(p, u.director, typed, 1)).status, 200);

    // A specimen rejected in full after routing: its analysis cancelled, its report started by the sample's run.
    const rejected = await routedSample(p, u.doc, u.tech, [test]);
    await mustAct(p, u.tech, rejected, 'reject', { code: 'RB', condition: 'Tube cracked in transit', disposition: 'discarded' });
    await assembled(p, u.director, rejected);
    assert.equal((await release(p, u.director, rejected, 1)).status, 200);

    const ids = {
      instrument: `analysis:${reported}:${test}`,
      typed: `analysis:${typed}:${test}`,
      sample: `sample-intake:${rejected}`,
      report: `report:${rejected}:v1`,
    };
    for (const id of Object.values(ids)) await runClosed(id);
    await save('results', 'instrument-submitted-autoverified-released', ids.instrument);
    await save('results', 'autoverified-report-started-released', ids.typed);
    await save('sample-intake', 'rejected-in-full-reported', ids.sample);
    await save('reports', 'rejected-specimen-released', ids.report);
  });
});
