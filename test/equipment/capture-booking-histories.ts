/**
 * Drives real bookings through the API on the test server and saves their histories as replay fixtures in
 * test/fixtures/histories/bookings/ (a booking approved by a single approver, checked into and checked out
 * automatically at end + grace; one bumped when its instrument went into maintenance) and the instrument run that
 * bumped it, in equipment/. Run with `npx mocha test/equipment/capture-booking-histories.ts` after a deliberate
 * change to what the runs record; commit the new files.
 */
import assert from 'node:assert/strict';
import { workflowIds } from '../../common/ids';
import { startPlatform, type Platform } from '../helpers/platform';
import { saveCheckedFixture } from '../helpers/replay-suite';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { equipmentUsers, inSeconds, inService, instrumentCode, mustAct, type EquipmentUsers } from './support';

const SETTINGS = { approvalDeadline: '1h', checkInBefore: '2s', noShowGrace: '3s', checkOutGrace: '2s' };

describe('capturing booking replay fixtures from real runs', function () {
  this.timeout(180_000);
  let p: Platform;
  let u: EquipmentUsers;
  const db = () => testEnv().db;
  before(async () => {
    p = await startPlatform({ apiConfig: { bookings: SETTINGS } });
    u = await equipmentUsers();
  });
  after(() => p.stop());

  const save = (folder: string, name: string, workflowId: string) => saveCheckedFixture(testEnv().client, folder, name, workflowId, []);
  const bookAct = (who: EquipmentUsers['tech'], id: string, action: string, body: unknown = {}) =>
    p.api('POST', `/api/v1/bookings/${id}/${action}`, { key: who.apiKey, body });
  const stateIs = (id: string, state: string) =>
    waitFor(async () => ((await db()('instrument_reservations').where({ id }).first('state'))?.state === state ? true : null), `booking ${id} ${state}`, 60_000);
  async function mustBook(who: EquipmentUsers['tech'], code: string, start: string, end: string) {
    const res = await p.api('POST', `/api/v1/instruments/${code}/bookings`, { key: who.apiKey, body: { start, end, purpose: 'Fixture run' } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.id as string;
  }
  const closed = (workflowId: string) =>
    waitFor(async () => (await testEnv().client.workflow.getHandle(workflowId).describe()).status.name === 'COMPLETED', `${workflowId} closed`, 60_000);

  it('records a booking approved, checked into and checked out at end + grace, and one bumped by maintenance', async () => {
    const code = instrumentCode();
    await inService(p, u, code, inSeconds(3600));
    const rule = await p.api('PUT', `/api/v1/instruments/${code}/booking-rule`, { key: u.qa.apiKey, body: { rule: 'single', tiers: [[u.tech2.username]] } });
    assert.equal(rule.status, 200, JSON.stringify(rule.body));

    const used = await mustBook(u.tech, code, inSeconds(8), inSeconds(12));
    await waitFor(async () => ((await bookAct(u.tech2, used, 'approve')).status === 200 ? true : null), 'the approval', 30_000, 250);
    await waitFor(async () => ((await bookAct(u.tech, used, 'check-in')).status === 200 ? true : null), 'the check-in window', 30_000, 250);
    await stateIs(used, 'completed');

    const bumped = await mustBook(u.tech, code, inSeconds(600), inSeconds(700));
    await waitFor(async () => ((await bookAct(u.tech2, bumped, 'approve')).status === 200 ? true : null), 'the approval', 30_000, 250);
    await stateIs(bumped, 'approved');
    await mustAct(p, u.tech, code, 'maintenance/start', { description: 'Unplanned: leak' });
    await stateIs(bumped, 'bumped');

    await closed(`booking:${used}`);
    await closed(`booking:${bumped}`);
    await save('bookings', 'single-approver-checked-in-and-out', `booking:${used}`);
    await save('bookings', 'bumped-by-maintenance', `booking:${bumped}`);
    // The instrument's run as it stands (it lives on): its maintenance step told the booking's run.
    const instrument = workflowIds.instrument(code);
    await waitFor(async () => {
      const history = await testEnv().client.workflow.getHandle(instrument).fetchHistory();
      return history.events?.some((e) => e.signalExternalWorkflowExecutionInitiatedEventAttributes) ? true : null;
    }, 'the bump told the booking run');
    await save('equipment', 'maintenance-bumped-a-booking', instrument);
  });
});
