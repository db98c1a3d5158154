import assert from 'node:assert/strict';
import { testEnv } from '../setup/env';
import { addRanges, labPlatform, mustAnalysisAct, readAnalysis, sign, testCode } from './support';
import { patientOf, routedFor, setPolicy, verifiedValue } from './rules-support';

const numeric = (value: number) => ({ kind: 'numeric', value, unit: 'mmol/L', performedBy: 'bench 2' });

describe('results: warning shoulders, invalid values and delta checks', function () {
  this.timeout(180_000);
  const lab = labPlatform();

  it('flags shoulders between the reference and critical limits, and invalid outside the measuring range', async () => {
    const { p, u } = lab;
    const test = await testCode({ ranges: [] });
    await testEnv()
      .db('reference_ranges')
      .insert({ test_code: test, version: 1, sex: 'any', unit: 'mmol/L', low: 3.5, high: 5.5, warning_low: 3, warning_high: 6, critical_low: 2.5, critical_high: 7 });
    await setPolicy(test, { measuring_low: 0.5, measuring_high: 20 });
    const accession = await routedFor(p, u.doc, u.tech, [test], patientOf());
    const cases: [number, string][] = [
      [4, 'normal'],
      [5.8, 'high'],
      [6.5, 'warning_high'],
      [3.2, 'low'],
      [2.8, 'warning_low'],
      [2.0, 'critical_low'],
      [8, 'critical_high'],
      [0.2, 'invalid'],
      [25, 'invalid'],
    ];
    for (const [value, flag] of cases) {
      const a = await mustAnalysisAct(p, u.tech, accession, test, 'result', numeric(value));
      assert.equal(a.result.flag, flag, `${value}`);
      assert.deepEqual(a.result.measuringRange, { low: 0.5, high: 20 });
      assert.deepEqual([a.result.referenceRange.warningLow, a.result.referenceRange.warningHigh], [3, 6]);
    }
    // The snapshot stays with the entry: a later range and measuring range do not change the result shown.
    await addRanges(test, 'mmol/L', [{ version: 2, low: 1, high: 30 }]);
    await setPolicy(test, { measuring_low: 0, measuring_high: 100 });
    const read = await readAnalysis(p, u.tech, accession, test);
    assert.equal(read.result.flag, 'invalid');
    assert.equal(read.result.referenceRange.version, 1);
    assert.deepEqual(read.result.measuringRange, { low: 0.5, high: 20 });
  });

  it('outside the measuring range is invalid even when no reference range matches; no range and no measuring range, no flag', async () => {
    const { p, u } = lab;
    const test = await testCode({ ranges: [] });
    await setPolicy(test, { measuring_high: 10 });
    const accession = await routedFor(p, u.doc, u.tech, [test], patientOf());
    assert.equal((await mustAnalysisAct(p, u.tech, accession, test, 'result', numeric(11))).result.flag, 'invalid');
    assert.equal((await mustAnalysisAct(p, u.tech, accession, test, 'result', numeric(9))).result.flag, null);
    const plain = await testCode({ ranges: [] });
    const other = await routedFor(p, u.doc, u.tech, [plain], patientOf());
    const a = await mustAnalysisAct(p, u.tech, other, plain, 'result', numeric(9));
    assert.equal(a.result.flag, null);
    assert.equal('measuringRange' in a.result, false);
    assert.equal('deltaCheck' in a.result, false);
  });

  it("checks the delta against the patient's previous verified result: absolute, percent, and within the window", async () => {
    const { p, u } = lab;
    const patient = patientOf();
    const abs = await testCode();
    const pct = await testCode();
    await setPolicy(abs, { delta_limit: 1, delta_kind: 'absolute', delta_window_hours: 48 });
    await setPolicy(pct, { delta_limit: 20, delta_kind: 'percent' });

    // The first sample: nothing to compare with yet.
    const first = await routedFor(p, u.doc, u.tech, [abs, pct], patient, 30);
    const none = await mustAnalysisAct(p, u.tech, first, abs, 'result', numeric(4));
    assert.deepEqual(
      { ...none.result.deltaCheck },
      { limit: 1, kind: 'absolute', windowHours: 48, previous: null, difference: null, percentChange: null, exceeded: null },
    );
    await mustAnalysisAct(p, u.tech, first, abs, 'submit');
    await verifiedValue(p, u.tech, u.tech2, first, pct, 4);
    // An unverified result does not count as previous: only `abs` of the first sample is left unverified.
    const second = await routedFor(p, u.doc, u.tech, [abs, pct], patient, 2);
    const unverifiedPrev = await mustAnalysisAct(p, u.tech, second, abs, 'result', numeric(6));
    assert.equal(unverifiedPrev.result.deltaCheck.previous, null);
    assert.equal(unverifiedPrev.result.deltaCheck.exceeded, null);

    const within = await mustAnalysisAct(p, u.tech, second, pct, 'result', numeric(4.6));
    assert.equal(within.result.deltaCheck.previous.workflowId, `analysis:${first}:${pct}`);
    assert.equal(within.result.deltaCheck.previous.value, 4);
    assert.equal(within.result.deltaCheck.percentChange, 15);
    assert.equal(within.result.deltaCheck.exceeded, false);
    const beyond = await mustAnalysisAct(p, u.tech, second, pct, 'result', numeric(5.2));
    assert.equal(beyond.result.deltaCheck.percentChange, 30);
    assert.equal(beyond.result.deltaCheck.exceeded, true);

    // Once the first `abs` is verified it counts; the window (48 h) holds a sample collected 28 h before.
    const firstAbs = await readAnalysis(p, u.tech, first, abs);
    assert.equal(firstAbs.state, 'to_be_verified');
    const verified = await sign(p, u.tech2, first, abs, 'verify');
    assert.equal(verified.status, 200, JSON.stringify(verified.body));
    const absDelta = await mustAnalysisAct(p, u.tech, second, abs, 'result', numeric(5.5));
    assert.equal(absDelta.result.deltaCheck.previous.value, 4);
    assert.equal(absDelta.result.deltaCheck.difference, 1.5);
    assert.equal(absDelta.result.deltaCheck.exceeded, true);

    // A window of 12 hours does not reach back 28 hours: nothing to compare with.
    await setPolicy(abs, { delta_window_hours: 12 });
    const outside = await mustAnalysisAct(p, u.tech, second, abs, 'result', numeric(5.5));
    assert.equal(outside.result.deltaCheck.previous, null);
    assert.equal(outside.result.deltaCheck.windowHours, 12);
    // The snapshot kept with the entry is what it was judged with.
    const row = await testEnv().db('analysis_entries').where({ id: (await testEnv().db('analyses').where({ workflow_id: `analysis:${second}:${pct}` }).first()).current_entry_id }).first();
    assert.equal(row.delta_check.exceeded, true);
  });
});
