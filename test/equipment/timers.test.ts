import assert from 'node:assert/strict';
import { startPlatform, type Platform } from '../helpers/platform';
import { waitFor } from '../helpers/wait';
import { analysisAct, routedSample, testCode } from '../results/support';
import { testEnv } from '../setup/env';
import { certificate, equipmentUsers, inService, inSeconds, instrumentCode, mustAct, read, type EquipmentUsers } from './support';

const reminders = async (code: string) =>
  (await testEnv()
    .db('instrument_calibration_reminders as r')
    .join('instrument_calibrations as c', 'c.id', 'r.certificate_id')
    .join('instruments as i', 'i.id', 'c.instrument_id')
    .where('i.code', code)
    .select('c.certificate_number', 'r.lead_time')) as { certificate_number: string; lead_time: string }[];

const reminderEvents = async (code: string) =>
  testEnv().db('audit_events').where({ entity_type: 'instrument', entity_id: code, action: 'instrument.calibration_reminder' }).select('details');

const until = (instant: string) => waitFor(() => Date.now() > Date.parse(instant) + 200, `past ${instant}`, 120_000);

describe('equipment: calibration expiry and reminders', function () {
  this.timeout(240_000);
  let p: Platform;
  let u: EquipmentUsers;
  before(async () => {
    p = await startPlatform();
    u = await equipmentUsers();
  });
  after(() => p.stop());

  it("usability flips exactly at the certificate's end, and results are refused from that moment", async () => {
    const code = instrumentCode();
    const validTo = inSeconds(25);
    await inService(p, u, code, validTo, { calibrationReminders: [] });
    const seen = { usable: 0, unusable: 0 };
    for (;;) {
      const view = await read(p, u.tech, code);
      // Judged by PostgreSQL's clock at the read: usable before the end, never at or after it.
      assert.equal(view.usable, Date.parse(view.asOf) < Date.parse(validTo), `usable ${view.usable} at ${view.asOf}, certificate ends ${validTo}`);
      seen[view.usable ? 'usable' : 'unusable'] += 1;
      if (view.reasons.includes('calibration_expired')) {
        assert.equal(view.state, 'out_of_service');
        assert.equal(view.statusLabel, 'out of service: calibration_expired');
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(seen.usable > 0 && seen.unusable > 0, JSON.stringify(seen));
    const test = await testCode();
    const accession = await routedSample(p, u.doc, u.tech, [test]);
    const refused = await analysisAct(p, u.tech, accession, test, 'result', { kind: 'numeric', value: 4, unit: 'mmol/L', performedBy: 'b', instrument: code });
    assert.equal(refused.status, 409);
    assert.match(refused.body.detail, /calibration_expired/);

    // A renewal is its own check after a lapse: back in service with no verification record.
    const renewed = await mustAct(p, u.qa, code, 'calibrations', certificate(u.tech, u.qa, inSeconds(3600)));
    assert.deepEqual([renewed.state, renewed.reasons, renewed.usable], ['in_service', [], true]);
  });

  it('a renewal cancels the reminders still pending for the certificate it replaces', async () => {
    const code = instrumentCode();
    // The first certificate's reminder would fall 20 s from now; the renewal's 30 s from now.
    await inService(p, u, code, inSeconds(45), { calibrationReminders: ['25s'] });
    const first = (await read(p, u.tech, code)).calibrations[0].certificateNumber;
    const renewal = certificate(u.tech, u.qa, inSeconds(55));
    await mustAct(p, u.qa, code, 'calibrations', renewal);
    await waitFor(async () => (await reminders(code)).length > 0, "the renewal's reminder", 120_000);
    assert.deepEqual(await reminders(code), [{ certificate_number: renewal.certificateNumber, lead_time: '25s' }]);
    assert.notEqual(first, renewal.certificateNumber);
    assert.equal((await reminderEvents(code)).length, 1);
  });

  it('sends each reminder once across a worker restart, then takes the instrument out of service', async () => {
    const code = instrumentCode();
    const validTo = inSeconds(40);
    await inService(p, u, code, validTo, { calibrationReminders: ['30s', '15s'] });
    // The worker is down when the first reminder falls due; the next one replays the run and sends it.
    await p.stopWorker();
    await until(new Date(Date.parse(validTo) - 29_000).toISOString());
    await p.startWorker();
    await waitFor(async () => (await read(p, u.tech, code)).reasons.includes('calibration_expired'), 'the expiry', 120_000);
    // And once more after the expiry: a restart finds every reminder already sent.
    await p.stopWorker();
    await p.startWorker();
    await mustAct(p, u.tech, code, 'qc', { passed: true, material: 'level 1' });
    const rows = await reminders(code);
    assert.deepEqual(rows.map((r) => r.lead_time).sort(), ['15s', '30s']);
    assert.equal((await reminderEvents(code)).length, 2);
    const notices = await testEnv().db('notifications').where('idempotency_key', 'like', 'instrument-reminder:%').whereIn('user_id', [u.qa.actor.userId]);
    const forThis = notices.filter((n) => rows.length && n.link?.endsWith(`/instruments/${code}`));
    assert.equal(forThis.length, 2);
  });
});
