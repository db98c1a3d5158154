import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import type { Actor } from '../../common/roles';
import {
  DEFAULT_INTAKE_TIMERS,
  evaluateInspection,
  inspectionHash,
  sampleIntakeStartOptions,
  stabilityDeadline,
  temperatureClass,
  type InspectionFindings,
  type SampleIntakeInput,
  type SampleIntakeState,
} from '../../common/sample-intake';
import { sampleRecordColumns } from '../../db/sample-intake';
import { cancelRetentionEnds, dueTimers } from '../../workflows/sample-intake/deadlines';
import { initialState } from '../../workflows/sample-intake/state';
import { nextTask, waitingOn } from '../../workflows/sample-intake/tasks';
import * as validators from '../../workflows/sample-intake/validators';
import { GOOD, SERUM, WELL_FORMED_GRANT, sampleInput } from './support';

const HOUR = 3_600_000;
const T0 = Date.parse('2026-03-02T08:00:00.000Z');
const at = (ms: number) => new Date(ms).toISOString();

const input = (over: Partial<SampleIntakeInput> = {}): SampleIntakeInput =>
  sampleInput('ACC-26000001', DEFAULT_INTAKE_TIMERS, { sampleId: 'id-1', collectedAt: at(T0), registeredAt: at(T0), ...over });
const sampleIn = (over: Partial<SampleIntakeState> = {}, inputOver: Partial<SampleIntakeInput> = {}) => ({
  ...initialState(input(inputOver), 'sample-intake:ACC-26000001'),
  ...over,
});
const actor = (...roles: Actor['roles']): Actor => ({ userId: 'u1', username: 'tina', printedName: 'Tina Tech', roles });
/** A request as the API sends it: the actor and a grant ID (checked by the recording activity, not here). */
const by = (...roles: Actor['roles']) => ({ actor: actor(...roles), grant: WELL_FORMED_GRANT });
const refusal = (fn: () => void) => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ApplicationFailure, String(err));
    return { type: err.type, message: err.message };
  }
  assert.fail('expected a refusal');
};

describe('sample intake rules', () => {
  describe('temperatureClass', () => {
    it('classes arrival temperatures into frozen, refrigerated and room, and nothing between the ranges', () => {
      assert.equal(temperatureClass(-20), 'frozen');
      assert.equal(temperatureClass(-15), 'frozen');
      assert.equal(temperatureClass(2), 'refrigerated');
      assert.equal(temperatureClass(8), 'refrigerated');
      assert.equal(temperatureClass(15), 'room');
      assert.equal(temperatureClass(25), 'room');
      assert.equal(temperatureClass(10), null);
      assert.equal(temperatureClass(30), null);
      assert.equal(temperatureClass(-5), null);
    });
  });

  describe('stabilityDeadline', () => {
    it('adds the stability window of the storage temperature to the collection time', () => {
      assert.equal(stabilityDeadline(SERUM, at(T0), 'room'), T0 + 8 * HOUR);
      assert.equal(stabilityDeadline(SERUM, at(T0), 'refrigerated'), T0 + 7 * 24 * HOUR);
    });
    it('has no deadline at a temperature the type is not stable at', () => {
      assert.equal(stabilityDeadline(SERUM, at(T0), 'frozen'), null);
    });
  });

  describe('evaluateInspection', () => {
    it('passes a specimen that meets every written criterion within its stability window', () => {
      const { passed, checks } = evaluateInspection(SERUM, GOOD, at(T0), at(T0 + HOUR));
      assert.equal(passed, true);
      assert.deepEqual(
        checks.map((c) => c.criterion),
        ['identifiers', 'container', 'preservative', 'volume', 'temperature', 'hemolysis', 'clotting', 'stability'],
      );
      assert.ok(checks.every((c) => c.ok));
    });

    const failed = (findings: Partial<InspectionFindings>, collectedAt: string | null = at(T0), receivedAt = at(T0 + HOUR)) =>
      evaluateInspection(SERUM, { ...GOOD, ...findings }, collectedAt, receivedAt)
        .checks.filter((c) => !c.ok)
        .map((c) => `${c.criterion}:${c.code}`);

    it('fails each criterion with its HL7 0490 code', () => {
      assert.deepEqual(failed({ identifiers: { count: 1, matchRequisition: true } }), ['identifiers:RE']);
      assert.deepEqual(failed({ identifiers: { count: 2, matchRequisition: false } }), ['identifiers:RI']);
      assert.deepEqual(failed({ container: 'EDTA' }), ['container:RM']);
      assert.deepEqual(failed({ preservative: 'none' }), ['preservative:RR']);
      assert.deepEqual(failed({ volumeMl: 0.5 }), ['volume:QS']);
      assert.deepEqual(failed({ hemolyzed: true }), ['hemolysis:RH']);
      assert.deepEqual(failed({ clotted: true }), ['clotting:RC']);
    });

    it('accepts the minimum volume itself', () => {
      assert.deepEqual(failed({ volumeMl: 1 }), []);
    });

    it('fails a temperature outside every range, and stability at that temperature', () => {
      assert.deepEqual(failed({ temperatureC: 12 }), ['temperature:RR', 'stability:EX']);
      assert.deepEqual(failed({ temperatureC: -20 }), ['temperature:RR', 'stability:EX']);
    });

    it('fails stability when the receipt comes after the window of the arrival temperature, and passes it at the deadline', () => {
      assert.deepEqual(failed({ temperatureC: 20 }, at(T0), at(T0 + 8 * HOUR)), []);
      assert.deepEqual(failed({ temperatureC: 20 }, at(T0), at(T0 + 8 * HOUR + 1)), ['stability:EX']);
      assert.deepEqual(failed({ temperatureC: 4 }, at(T0), at(T0 + 8 * HOUR + 1)), []);
    });

    it('fails stability when the collection time is unknown', () => {
      const { checks } = evaluateInspection(SERUM, GOOD, null, at(T0));
      const stability = checks.find((c) => c.criterion === 'stability');
      assert.deepEqual([stability?.ok, stability?.code, stability?.detail], [false, 'RD', 'the collection time is unknown']);
    });

    it('ignores hemolysis and clotting for a type that does not reject them', () => {
      const lenient = { ...SERUM, rejectHemolyzed: false, rejectClotted: false };
      assert.equal(evaluateInspection(lenient, { ...GOOD, hemolyzed: true, clotted: true }, at(T0), at(T0 + HOUR)).passed, true);
    });
  });

  describe('inspectionHash', () => {
    it('is the SHA-256 of the inspection record as node:crypto computes it, whatever the order of the findings', () => {
      const receivedAt = at(T0 + HOUR);
      const canonical = JSON.stringify({
        accession: 'ACC-26000001',
        receivedAt,
        findings: Object.fromEntries(Object.entries(GOOD).sort(([a], [b]) => a.localeCompare(b))),
      });
      const expected = createHash('sha256').update(canonical, 'utf8').digest('hex');
      assert.equal(inspectionHash('ACC-26000001', GOOD, receivedAt), expected);
      const reordered = Object.fromEntries(Object.entries(GOOD).reverse()) as unknown as InspectionFindings;
      assert.equal(inspectionHash('ACC-26000001', reordered, receivedAt), expected);
      assert.notEqual(inspectionHash('ACC-26000001', { ...GOOD, volumeMl: 2 }, receivedAt), expected);
    });
  });

  describe('sampleIntakeStartOptions', () => {
    it('names the run by accession, refuses a second run under it and makes it findable from the start', () => {
      const options = sampleIntakeStartOptions('ACC-26000042');
      assert.equal(options.workflowId, 'sample-intake:ACC-26000042');
      assert.equal(options.workflowIdReusePolicy, 'REJECT_DUPLICATE');
      assert.deepEqual(
        options.typedSearchAttributes.map((pair) => [pair.key.name, pair.value]),
        [
          ['EntityType', 'sample'],
          ['EntityId', 'ACC-26000042'],
          ['Stage', 'expected'],
        ],
      );
    });
  });

  describe('dueTimers', () => {
    const kinds = (sample: SampleIntakeState, over: Partial<SampleIntakeInput> = {}) =>
      dueTimers(sample, input(over)).map((t) => [t.kind, t.at - T0]);

    it('holds an ordered specimen that has not arrived, and no specimen without an order', () => {
      assert.deepEqual(kinds(sampleIn()), [['specimen_hold', 7 * 24 * HOUR]]);
      assert.deepEqual(kinds(sampleIn({ hasOrder: false })), []);
    });

    it('expects a shipped specimen within the transit time', () => {
      assert.deepEqual(kinds(sampleIn({ state: 'in_transit', shippedAt: at(T0 + HOUR) })), [['in_transit_overdue', 25 * HOUR]]);
    });

    it('watches stability at the known temperature (room when unknown) and the order hold, soonest first', () => {
      const received = { state: 'received' as const, receivedAt: at(T0 + HOUR) };
      assert.deepEqual(kinds(sampleIn(received)), [['stability_expired', 8 * HOUR]]);
      assert.deepEqual(kinds(sampleIn({ ...received, temperatureClass: 'refrigerated' })), [['stability_expired', 7 * 24 * HOUR]]);
      assert.deepEqual(kinds(sampleIn({ ...received, hasOrder: false, temperatureClass: 'refrigerated' })), [
        ['order_hold', 73 * HOUR],
        ['stability_expired', 7 * 24 * HOUR],
      ]);
    });

    it('runs the STAT turnaround from receipt until every accepted test has a result, and never twice', () => {
      const stat = { state: 'routed' as const, priority: 'stat' as const, receivedAt: at(T0 + HOUR) };
      assert.deepEqual(kinds(sampleIn(stat)), [['stat_overdue', 2 * HOUR]]);
      assert.deepEqual(kinds(sampleIn({ ...stat, results: ['CMP', 'TSH'] })), []);
      assert.deepEqual(kinds(sampleIn({ ...stat, results: ['CMP'], rejectedTests: ['TSH'] })), []);
      assert.deepEqual(kinds(sampleIn({ ...stat, timersFired: ['stat_overdue'] })), []);
      assert.deepEqual(kinds(sampleIn({ ...stat, state: 'cancelled' })), []);
    });

    it('keeps a cancelled sample for the retention period', () => {
      assert.equal(cancelRetentionEnds(at(T0), input()) - T0, 30 * 24 * HOUR);
    });
  });

  describe('who acts next', () => {
    it('sends an inspection to a technician, a failed one to the director and a sample without an order back to a technician', () => {
      const received = sampleIn({ state: 'received', stage: 'received' });
      assert.deepEqual(waitingOn(received), ['role:lab_technician']);
      assert.equal(nextTask(received)?.next, 'inspect');
      const inspection = { by: 'tina', at: at(T0), contentHash: 'h', checks: [], passed: false };
      const failedOne = sampleIn({ state: 'inspected', stage: 'inspected', inspection });
      assert.deepEqual(waitingOn(failedOne), ['role:lab_director']);
      assert.equal(nextTask(failedOne)?.next, 'decide');
      assert.equal(nextTask(sampleIn({ state: 'inspected', hasOrder: false, inspection }))?.next, 'attach_order');
      assert.equal(nextTask(sampleIn({ state: 'inspected', inspection: { ...inspection, passed: true } }))?.next, 'accept');
      assert.equal(nextTask(sampleIn({ state: 'stored' }))?.next, 'bench_work');
      assert.equal(nextTask(sampleIn({ state: 'routed' })), null);
      assert.deepEqual(waitingOn(sampleIn({ state: 'in_transit' })), []);
    });
  });

  describe('validators', () => {
    it('refuses a receipt before collection, a receipt of a received sample and one by a clinician', () => {
      const expected = sampleIn();
      const receipt = { ...by('lab_technician'), by: 'tina', receivedAt: at(T0 + HOUR), location: 'Bench' };
      assert.doesNotThrow(() => validators.validateReceipt(expected, receipt));
      assert.equal(refusal(() => validators.validateReceipt(expected, { ...receipt, receivedAt: at(T0 - HOUR) })).type, 'InvalidInput');
      assert.deepEqual(
        refusal(() => validators.validateReceipt(sampleIn({ state: 'received' }), receipt)),
        { type: 'WrongStage', message: 'ACC-26000001 is received, not expected or in_transit' },
      );
      assert.equal(refusal(() => validators.validateReceipt(expected, { ...receipt, ...by('clinician') })).type, 'Forbidden');
      assert.doesNotThrow(() => validators.validateReceipt(expected, { ...receipt, ...by('admin') }));
    });

    it('refuses every Update without proof: a null or malformed actor, no grant or a malformed grant ID', () => {
      const received = sampleIn({ state: 'received' });
      const reason = 'duplicate draw';
      const forged: [string, unknown][] = [
        ['a null actor', { actor: null, grant: WELL_FORMED_GRANT, reason }],
        ['no actor', { grant: WELL_FORMED_GRANT, reason }],
        ['an actor without roles', { actor: { userId: 'u1', username: 'tina', printedName: 'Tina' }, grant: WELL_FORMED_GRANT, reason }],
        ['an actor with a made-up role', { actor: { ...actor('lab_technician'), roles: ['superuser'] }, grant: WELL_FORMED_GRANT, reason }],
        ['no grant', { actor: actor('lab_technician'), reason }],
        ['a malformed grant', { actor: actor('lab_technician'), grant: 'trust-me', reason }],
      ];
      for (const [what, args] of forged) {
        assert.equal(refusal(() => validators.validateCancellation(received, args as never)).type, 'GrantRefused', what);
      }
      const inspected = sampleIn({ state: 'inspected', inspection: { by: 't', at: at(T0), contentHash: 'h', checks: [], passed: true } });
      const checks: [string, () => void][] = [
        ['receive', () => validators.validateReceipt(sampleIn(), { actor: null, by: 'x', receivedAt: at(T0 + HOUR), location: 'B' })],
        ['inspect', () => validators.validateInspection(received, { actor: null, findings: GOOD })],
        ['accept', () => validators.validateAcceptance(inspected, { actor: null } as never)],
        ['reinstate', () => validators.validateReinstatement(sampleIn({ state: 'cancelled' }), { actor: null, reason } as never)],
        ['order', () => validators.validateOrder(sampleIn({ hasOrder: false }), { actor: null, tests: ['CMP'] } as never)],
      ];
      for (const [what, check] of checks) assert.equal(refusal(check).type, 'GrantRefused', what);
    });

    it('lets a clinician cancel or order only a sample they submitted; lab roles act on any', () => {
      const received = sampleIn({ state: 'received' });
      const clinician = by('clinician');
      const mine = { kind: 'user' as const, userId: clinician.actor.userId, username: 'tina' };
      const theirs = { kind: 'user' as const, userId: 'someone-else', username: 'other' };
      assert.doesNotThrow(() => validators.validateCancellation(received, { ...clinician, reason: 'x' }, mine));
      assert.deepEqual(
        refusal(() => validators.validateCancellation(received, { ...clinician, reason: 'x' }, theirs)),
        {
          type: 'Forbidden',
          message: 'a clinician acts only on samples they submitted',
        },
      );
      assert.equal(refusal(() => validators.validateCancellation(received, { ...clinician, reason: 'x' }, null)).type, 'Forbidden');
      const unordered = sampleIn({ state: 'received', hasOrder: false });
      assert.equal(refusal(() => validators.validateOrder(unordered, { ...clinician, tests: ['CMP'] }, theirs)).type, 'Forbidden');
      assert.doesNotThrow(() => validators.validateOrder(unordered, { ...clinician, tests: ['CMP'] }, mine));
      assert.doesNotThrow(() => validators.validateCancellation(received, { ...by('lab_technician'), reason: 'x' }, theirs));
    });

    it('refuses anything on a finished sample as finished', () => {
      assert.deepEqual(
        refusal(() => validators.validateCancellation(sampleIn({ state: 'rejected' }), { ...by('lab_technician'), reason: 'x' })),
        { type: 'RunFinished', message: 'ACC-26000001 is rejected; nothing more can be done' },
      );
    });

    it('accepts only a passed inspection, and a deviation only over the current hash with a comment', () => {
      const inspection = {
        by: 'tina',
        at: at(T0),
        contentHash: 'abc',
        checks: [{ criterion: 'volume', ok: false, detail: '' }],
        passed: false,
      };
      const inspected = sampleIn({ state: 'inspected', inspection });
      assert.match(refusal(() => validators.validateAcceptance(inspected, { ...by('lab_technician') })).message, /fails volume/);
      const signature = { meaning: 'approval', contentHash: 'abc', signedAt: at(T0) };
      const director = by('lab_director');
      assert.doesNotThrow(() => validators.validateDeviation(inspected, { ...director, comment: 'ok', signature }));
      assert.equal(
        refusal(() =>
          validators.validateDeviation(inspected, { ...director, comment: 'ok', signature: { ...signature, contentHash: 'old' } }),
        ).type,
        'StaleContentHash',
      );
      assert.equal(refusal(() => validators.validateDeviation(inspected, { ...director, comment: ' ', signature })).type, 'InvalidInput');
      assert.equal(
        refusal(() => validators.validateDeviation(inspected, { ...by('lab_technician'), comment: 'ok', signature })).type,
        'Forbidden',
      );
    });

    it('refuses to store on a taken position and to route a test twice', () => {
      const stored = sampleIn({
        state: 'stored',
        storage: [{ piece: 'ACC-26000001', freezer: 'F1', rack: 'R1', box: 'B1', position: 'A1' }],
      });
      const place = { freezer: 'F1', rack: 'R1', box: 'B1', position: 'A1' };
      assert.equal(
        refusal(() => validators.validateStorage(stored, { ...by('lab_technician'), piece: 'ACC-26000001', ...place })).type,
        'PositionTaken',
      );
      const routed = sampleIn({
        state: 'routed',
        routes: ['CMP', 'TSH'].map((test) => ({ test, workQueue: 'chem', piece: 'ACC-26000001', at: at(T0) })),
      });
      assert.equal(refusal(() => validators.validateRouting(routed, { ...by('lab_technician') })).type, 'WrongStage');
    });
  });

  describe('sampleRecordColumns', () => {
    it('maps the facts a step states to the columns they set, and leaves the others out', () => {
      assert.deepEqual(sampleRecordColumns({}), {});
      assert.deepEqual(sampleRecordColumns({ receipt: { receivedAt: 't', by: 'tina', location: 'Bench', collectedAt: null } }), {
        received_at: 't',
        received_by: 'tina',
        received_location: 'Bench',
        collected_at: null,
      });
      assert.deepEqual(sampleRecordColumns({ order: { tests: ['CMP'] }, cancelReason: null }), {
        has_order: true,
        requested_tests: ['CMP'],
        cancel_reason: null,
      });
      const record = { by: 'tina', at: 't', contentHash: 'h', checks: [], passed: true };
      assert.deepEqual(sampleRecordColumns({ inspection: { record, volumeMl: 3 }, deviation: { comment: 'c' } }), {
        inspection: JSON.stringify(record),
        volume_ml: 3,
        deviation_comment: 'c',
      });
    });
  });
});
