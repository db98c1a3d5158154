import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { authorisationStatement } from '../../common/competence';
import { assertProblem } from '../api/support';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';
import { act as capaAct, createCapa, inHours, sign, toImplementation, waitForStage } from '../capa/support';
import { routedSample, testCode } from '../results/support';
import { act as sampleAct, inspected } from '../sample-intake/support';
import { assembled, release, verifiedResult } from '../reports/support';

const CAPA_CLOSURE = 'capa.close';
const DEVIATION = 'sample.accept_with_deviation';
const RELEASE = 'result.release';
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/**
 * The gate (db/gate.ts) on CAPA closure, on accepting a sample despite a failed criterion, and on the lab
 * director's release of a report: with an authorisation required, a person without one is refused 403 naming it
 * and nothing is written; authorised, the same person passes.
 */
describe('the gate before CAPA closure, acceptance with a deviation and report release', function () {
  this.timeout(180_000);
  let p: Platform;
  let u: Record<'qa' | 'director' | 'grantor' | 'owner' | 'doc' | 'tech' | 'tech2', TestUser>;
  const db = () => testEnv().db;

  before(async () => {
    p = await startPlatform();
    u = await makeUsers({
      qa: ['qa_manager'],
      director: ['lab_director'],
      grantor: ['qa_manager', 'lab_director'],
      owner: ['author'],
      doc: ['clinician'],
      tech: ['lab_technician'],
      tech2: ['lab_technician'],
    });
    for (const activity of [CAPA_CLOSURE, DEVIATION, RELEASE]) {
      const set = await p.api('PUT', `/api/v1/gate/activities/${activity}/requirements`, { key: u.grantor.apiKey, body: { competency: false, authorisation: true } });
      assert.equal(set.status, 200, JSON.stringify(set.body));
    }
  });
  after(async () => {
    await db()('gate_activity_requirements').whereIn('activity', [CAPA_CLOSURE, DEVIATION, RELEASE]).delete();
    await p.stop();
  });

  async function authorise(who: TestUser, activity: string) {
    const validFrom = new Date(Date.now() - 1000).toISOString();
    const contentHash = sha256(authorisationStatement({ username: who.username, activity, scope: '*', validFrom }));
    const res = await p.api('POST', '/api/v1/authorisations', {
      key: u.grantor.apiKey,
      body: { username: who.username, activity, scope: '*', validFrom, signature: { password: u.grantor.password, meaning: 'authorisation', contentHash } },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
  }
  const refusalsAudited = (entityType: string, entityId: string) =>
    db()('audit_events').where({ action: 'gate.refused', entity_type: entityType, entity_id: entityId }).pluck('details');

  it('refuses closing a CAPA to a QA manager not authorised to close (403 naming it, nothing signed), and closes it once authorised', async () => {
    const { number } = await createCapa(p, u.doc, { sources: [{ type: 'sample', id: `ACC-G${Date.now()}` }] });
    await toImplementation(p, u, number, [{ type: 'corrective', description: 'Retrain phlebotomists', owner: { user: u.owner.username }, dueAt: inHours(24) }]);
    await capaAct(p, u.owner, number, '/actions/A1/complete', { evidence: 'Training records TR-12' });
    await waitForStage(p, u.qa, number, 'effectiveness_review');
    const passed = await capaAct(p, u.director, number, '/effectiveness', { results: [{ criterionId: 'C1', met: true, evidence: 'Rate 1%' }] });
    const signaturesBefore = (await db()('signatures').where({ entity_type: 'capa', entity_id: number })).length;

    const close = () => p.api('POST', `/api/v1/capas/${number}/close`, { key: u.qa.apiKey, body: { signature: sign(u.qa, passed.closureContentHash, 'responsibility') } });
    const refused = await close();
    assertProblem(refused, 403, 'gate-refused');
    assert.deepEqual(refused.body.missing, [{ kind: 'authorisation', activity: CAPA_CLOSURE, scope: '*', reason: 'none', dueAt: null }]);
    assert.match(refused.body.detail, /authorisation for capa\.close/);
    assert.equal((await db()('capas').where({ number }).first('stage')).stage, 'effectiveness_review');
    assert.equal((await db()('signatures').where({ entity_type: 'capa', entity_id: number })).length, signaturesBefore);
    assert.equal((await refusalsAudited('capa', number))[0].checkedAt, 'api');

    await authorise(u.qa, CAPA_CLOSURE);
    const closed = await close();
    assert.equal(closed.status, 200, JSON.stringify(closed.body));
    assert.equal(closed.body.stage, 'closed');
  });

  it('refuses accepting a sample with a deviation to a lab director not authorised for it (403, nothing signed), and accepts it once authorised', async () => {
    const { accession, state } = await inspected(p, u.doc, u.tech, {}, { hemolyzed: true });
    const accept = () =>
      sampleAct(p, u.director, accession, 'accept-with-deviation', {
        comment: 'Mild hemolysis: potassium flagged',
        signature: { password: u.director.password, meaning: 'approval', contentHash: state.process.inspection.contentHash },
      });
    const refused = await accept();
    assertProblem(refused, 403, 'gate-refused');
    assert.deepEqual(refused.body.missing.map((m: { kind: string; activity: string }) => [m.kind, m.activity]), [['authorisation', DEVIATION]]);
    const sample = await db()('samples').where({ accession }).first('state', 'deviation_comment');
    assert.equal(sample.deviation_comment, null);
    assert.equal((await db()('signatures').where({ entity_type: 'sample', entity_id: accession })).length, 0);
    assert.equal((await refusalsAudited('sample', accession)).length, 1);

    await authorise(u.director, DEVIATION);
    const accepted = await accept();
    assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
    assert.equal((await db()('signatures').where({ entity_type: 'sample', entity_id: accession })).length, 1);
  });

  it('refuses releasing a report to a lab director not authorised to release results (403, the report stays unreleased), and releases it once authorised', async () => {
    const test = await testCode();
    const accession = await routedSample(p, u.doc, u.tech, [test]);
    await verifiedResult(p, u, accession, test);
    const v1 = await assembled(p, u.director, accession);
    assert.equal(v1.state, 'awaiting_release');

    const refused = await release(p, u.director, accession, 1);
    assertProblem(refused, 403, 'gate-refused');
    assert.deepEqual(refused.body.missing, [{ kind: 'authorisation', activity: RELEASE, scope: '*', reason: 'none', dueAt: null }]);
    const row = await db()('reports').where({ accession, version: 1 }).first('state', 'workflow_id', 'signature_id');
    assert.deepEqual([row.state, row.signature_id], ['awaiting_release', null]);
    assert.equal((await refusalsAudited('report', row.workflow_id)).length, 1);

    await authorise(u.director, RELEASE);
    const released = await release(p, u.director, accession, 1);
    assert.equal(released.status, 200, JSON.stringify(released.body));
    assert.equal(released.body.state, 'released');
  });
});
