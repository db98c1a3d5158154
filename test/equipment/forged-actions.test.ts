import assert from 'node:assert/strict';
import { boundInstrumentArgs, recordCalibrationUpdate, recordQcUpdate, retireInstrumentUpdate } from '../../common/equipment';
import { grantForgeries, issueTestGrant, refusalType } from '../helpers/forgery';
import { startPlatform, type Platform } from '../helpers/platform';
import { testEnv } from '../setup/env';
import { equipmentUsers, inService, inSeconds, instrumentCode, read, sha, type EquipmentUsers } from './support';

describe('equipment: an action sent straight to Temporal without a grant from labflow', function () {
  this.timeout(180_000);
  let p: Platform;
  let u: EquipmentUsers;
  before(async () => {
    p = await startPlatform();
    u = await equipmentUsers();
  });
  after(() => p.stop());

  it('is refused for every kind of bad proof, records nothing, and is a security event', async () => {
    const code = instrumentCode();
    await inService(p, u, code, inSeconds(3600));
    const workflowId = `instrument:${code}`;
    const run = testEnv().client.workflow.getHandle(workflowId);
    const qc = { passed: false, material: 'level 2' };
    const forgeries = await grantForgeries({
      workflowId,
      who: u.tech,
      other: u.tech2,
      action: 'instrument.qc',
      bound: boundInstrumentArgs('instrument.qc', qc),
      otherBound: boundInstrumentArgs('instrument.qc', { ...qc, passed: true }),
      otherAction: { action: 'instrument.report_defect', bound: boundInstrumentArgs('instrument.report_defect', { description: 'x' }) },
    });
    for (const forgery of forgeries) {
      const type = await refusalType(run.executeUpdate(recordQcUpdate, { args: [{ ...qc, actor: u.tech.actor, grant: forgery.grant as string }] }));
      assert.equal(type, 'GrantRefused', forgery.name);
    }
    const view = await read(p, u.tech, code);
    assert.deepEqual([view.state, view.reasons, view.events.map((e: { kind: string }) => e.kind)], ['in_service', [], ['returned_to_service']]);
    const refused = await testEnv().db('audit_events').where({ entity_type: 'instrument', entity_id: code, action: 'security.grant_refused' });
    assert.equal(refused.length, forgeries.filter((f) => !f.byValidator).length);

    // A technician's real grant does not let them retire it (the role is checked again against Postgres).
    const retire = { reason: 'forged' };
    const techGrant = await issueTestGrant(u.tech, workflowId, 'instrument.retire', boundInstrumentArgs('instrument.retire', retire));
    const asDirector = { ...u.tech.actor, roles: ['lab_director' as const] };
    assert.equal(await refusalType(run.executeUpdate(retireInstrumentUpdate, { args: [{ ...retire, actor: asDirector, grant: techGrant }] })), 'GrantRefused');

    // A signed certificate needs a grant whose password check bound its signature.
    const documentHash = sha('forged certificate');
    const facts = {
      certificateNumber: 'CAL-FORGED',
      validFrom: new Date().toISOString(),
      validTo: inSeconds(86_400 * 365),
      documentHash,
      results: 'ok',
      preparedBy: u.tech.username,
      signature: { meaning: 'review', contentHash: documentHash, signedAt: new Date().toISOString() },
    };
    const unsigned = await issueTestGrant(u.qa, workflowId, 'instrument.calibrate', boundInstrumentArgs('instrument.calibrate', facts));
    assert.equal(await refusalType(run.executeUpdate(recordCalibrationUpdate, { args: [{ ...facts, actor: u.qa.actor, grant: unsigned }] })), 'GrantRefused');
    const after = await read(p, u.tech, code);
    assert.equal(after.state, 'in_service');
    assert.equal(after.calibrations.length, 1);
  });
});
