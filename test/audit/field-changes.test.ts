import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeCapaProjection, type CapaProjection } from '../../db/capa';
import { diff, phiDigest } from '../../db/field-changes';
import { assertProblem, refused } from '../api/support';
import { createPatient, marker, patientUrl } from '../patients/support';
import { approve, createDraft, getVersion, submit, waitForState } from '../helpers/documents';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';

type Change = { field: string; old: unknown; new: unknown };
const byField = (changes: Change[]) => Object.fromEntries(changes.map((c) => [c.field, c]));

describe('field changes in the audit trail', () => {
  describe('diff', () => {
    it('lists each changed field with its old and new value, in field order, and nothing for unchanged fields', () => {
      const at = new Date('2026-12-01T10:00:00.000Z');
      const changes = diff(
        { title: 'Old', roles: ['author'], due_at: null, count: 1, same: { a: 1, b: [1, 2] }, updated_at: at },
        { title: 'New', roles: ['author', 'reviewer'], due_at: at, count: 1, same: { b: [1, 2], a: 1 }, updated_at: new Date() },
      );
      assert.deepEqual(changes, [
        { field: 'due_at', old: null, new: '2026-12-01T10:00:00.000Z' },
        { field: 'roles', old: ['author'], new: ['author', 'reviewer'] },
        { field: 'title', old: 'Old', new: 'New' },
      ]);
      assert.deepEqual(diff({ a: 1, b: 'x' }, { a: 1, b: 'x' }), []);
      assert.deepEqual(diff({ a: 1, b: 'x' }, { a: 2, b: 'y' }, { fields: ['b'] }), [{ field: 'b', old: 'x', new: 'y' }]);
      assert.deepEqual(diff(null, { a: 1 }), [{ field: 'a', old: null, new: 1 }]);
      assert.deepEqual(diff({ a: 1 }, { a: undefined }), [{ field: 'a', old: 1, new: null }]);
    });

    it('keeps only a hash of a PHI field, never the value, and still shows that it changed', () => {
      const changes = diff(
        { name: 'Jane Roe', mrn: 'MRN-0001', sex: 'F' },
        { name: 'Jane Doe', mrn: 'MRN-0001', sex: 'F' },
        { phiFields: ['name', 'mrn'] },
      );
      const sha = (v: string) => `sha256:${createHash('sha256').update(JSON.stringify(v), 'utf8').digest('hex')}`;
      assert.deepEqual(changes, [{ field: 'name', old: sha('Jane Roe'), new: sha('Jane Doe') }]);
      assert.ok(!JSON.stringify(changes).includes('Jane'), 'no PHI value in the change record');
      assert.deepEqual(diff({ notes: 'x' }, { notes: null }, { phiFields: ['notes'] }), [
        { field: 'notes', old: phiDigest('x'), new: null },
      ]);
    });
  });

  describe('controlled records', () => {
    let p: Platform;
    let u: Record<'author' | 'rita' | 'control' | 'admin' | 'olga' | 'target' | 'carla', TestUser>;

    before(async () => {
      p = await startPlatform();
      u = await makeUsers({
        author: ['author'],
        rita: ['reviewer'],
        control: ['document_control'],
        admin: ['admin'],
        olga: ['author'],
        target: ['author'],
        carla: ['clinician'],
      });
    });
    after(() => p.stop());

    const db = () => testEnv().db;
    const eventsOf = (entityType: string, entityId: string, action: string) =>
      db()('audit_events').where({ entity_type: entityType, entity_id: entityId, action }).orderBy('seq').select('actor', 'details');

    it('records the old and new value of every field of a document version its run changes', async () => {
      const { number, contentHash } = await createDraft(p, u.author);
      const { workflowId } = await submit(p, u.author, number, 1, {
        routing: [{ name: 'Review', assignees: [{ user: u.rita.username }] }],
      });
      await waitFor(async () => (await getVersion(p, u.author.apiKey, number, 1)).process?.stages[0].status === 'active', 'open');
      assert.equal((await approve(p, u.rita, number, 1, contentHash)).status, 200);
      await waitForState(p, u.author.apiKey, number, 1, 'effective');
      await waitFor(async () => (await eventsOf('document', number, 'document.effective')).length === 1, 'effective recorded');

      const [opened] = await eventsOf('document', number, 'document.stage_opened');
      const open = byField(opened.details.changes);
      assert.deepEqual(open.state, { field: 'state', old: 'draft', new: 'in_review' });
      assert.deepEqual(open.workflow_id, { field: 'workflow_id', old: null, new: workflowId });
      assert.deepEqual(open.round, { field: 'round', old: 0, new: 1 });
      assert.deepEqual(open.stage_name, { field: 'stage_name', old: null, new: 'Review' });
      assert.deepEqual(open.assignees, { field: 'assignees', old: [], new: [`user:${u.rita.username}`] });
      assert.equal(open.submitted_at.old, null);
      assert.ok(!Number.isNaN(Date.parse(String(open.submitted_at.new))));

      const [approved] = await eventsOf('document', number, 'document.approved');
      const closed = byField(approved.details.changes);
      assert.deepEqual(closed.state, { field: 'state', old: 'in_review', new: 'approved' });
      assert.deepEqual(closed.stage_name, { field: 'stage_name', old: 'Review', new: null });
      assert.deepEqual(closed.assignees, { field: 'assignees', old: [`user:${u.rita.username}`], new: [] });
      assert.equal(closed.due_at.new, null);
      assert.ok(closed.due_at.old);

      const [effective] = await eventsOf('document', number, 'document.effective');
      const made = byField(effective.details.changes);
      assert.deepEqual(made.state, { field: 'state', old: 'approved', new: 'effective' });
      assert.equal(made.effective_at.old, null);
      assert.ok(made.next_review_at.new);
    });

    it("records old and new values when document control changes a document's title or owner; refuses anyone else", async () => {
      const { number } = await createDraft(p, u.author, undefined, 'Centrifuge use');
      const path = `/api/v1/documents/${number}`;
      const forbidden = await refused(() => p.api('PATCH', path, { key: u.author.apiKey, body: { title: 'Mine now' } }));
      assertProblem(forbidden, 403, 'forbidden');
      assertProblem(
        await refused(() => p.api('PATCH', path, { key: u.control.apiKey, body: { owner: 'nobody.here' } })),
        422,
        'unknown-user',
        'body.owner',
      );
      assertProblem(await refused(() => p.api('PATCH', path, { key: u.control.apiKey, body: {} })), 400, 'validation');

      const res = await p.api('PATCH', path, { key: u.control.apiKey, body: { title: 'Centrifuge operation', owner: u.olga.username } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.owner, u.olga.username);
      const [event] = await eventsOf('document', number, 'document.updated');
      assert.equal(event.actor, u.control.username);
      assert.deepEqual(byField(event.details.changes), {
        owner_id: { field: 'owner_id', old: u.author.actor.userId, new: u.olga.actor.userId },
        title: { field: 'title', old: 'Centrifuge use', new: 'Centrifuge operation' },
      });

      // The new owner may add versions; the old one no longer may.
      await p.api('POST', `${path}/versions/1/cancel`, { key: u.control.apiKey, body: { reason: 'owner changed' } });
      const formerOwner = await refused(() => p.api('POST', `${path}/versions`, { key: u.author.apiKey, body: { content: 'v2' } }));
      assertProblem(formerOwner, 403, 'forbidden');
      assert.equal((await p.api('POST', `${path}/versions`, { key: u.olga.apiKey, body: { content: 'v2' } })).status, 201);

      // A change to the same values changes nothing and records nothing.
      const before = (await eventsOf('document', number, 'document.updated')).length;
      const same = await p.api('PATCH', path, { key: u.control.apiKey, body: { title: 'Centrifuge operation' } });
      assert.deepEqual(same.body.changes, []);
      assert.equal((await eventsOf('document', number, 'document.updated')).length, before);
    });

    it("records old and new values when an admin changes a user's name; refuses anyone else, and roles or active unsigned", async () => {
      const path = `/api/v1/users/${u.target.username}`;
      assertProblem(await refused(() => p.api('PATCH', path, { key: u.control.apiKey, body: { printedName: 'X' } })), 403, 'forbidden');
      assertProblem(
        await refused(() => p.api('PATCH', '/api/v1/users/nobody.here', { key: u.admin.apiKey, body: { printedName: 'X' } })),
        404,
        'not-found',
      );
      // Roles and the active flag change only through the signed lifecycle routes (test/users).
      assertProblem(
        await refused(() => p.api('PATCH', path, { key: u.admin.apiKey, body: { roles: ['admin'], printedName: 'X' } })),
        422,
        'signed-change-required',
      );

      const res = await p.api('PATCH', path, { key: u.admin.apiKey, body: { printedName: 'Tara Target' } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const [event] = await eventsOf('user', u.target.username, 'user.updated');
      assert.equal(event.actor, u.admin.username);
      assert.deepEqual(byField(event.details.changes), {
        printed_name: { field: 'printed_name', old: u.target.actor.printedName, new: 'Tara Target' },
      });
    });

    it('answers the old and new values of each field the CAPA projection write changes, and none for a stale revision', async () => {
      const number = `CAPA-2026-${String(900000 + (randomBytes(2).readUInt16BE() % 99999))}`;
      const capa = { workflowId: `capa:${number}`, number, title: 'Pipette drift' };
      const projection = (stage: CapaProjection['stage'], extra: Partial<CapaProjection> = {}): CapaProjection => ({
        stage,
        outcome: null,
        round: 1,
        risk: null,
        owner: null,
        assignees: ['role:qa_manager'],
        dueAt: null,
        mergedInto: null,
        initiatedBy: u.author.username,
        closedAt: null,
        ...extra,
      });
      const trx = await db().transaction();
      try {
        const created = await writeCapaProjection(trx, capa, 1, projection('triage'));
        assert.deepEqual(byField(created).stage, { field: 'stage', old: null, new: 'triage' });
        const owner = { kind: 'user' as const, userId: u.olga.actor.userId, username: u.olga.username };
        const changed = await writeCapaProjection(
          trx,
          capa,
          2,
          projection('containment', {
            owner,
            assignees: [`user:${u.olga.username}`],
            risk: { severity: 3, occurrence: 2, score: 6, level: 'medium' },
          }),
        );
        assert.deepEqual(byField(changed), {
          assignees: { field: 'assignees', old: ['role:qa_manager'], new: [`user:${u.olga.username}`] },
          owner: { field: 'owner', old: null, new: `user:${u.olga.username}` },
          owner_user_id: { field: 'owner_user_id', old: null, new: u.olga.actor.userId },
          risk_level: { field: 'risk_level', old: null, new: 'medium' },
          risk_occurrence: { field: 'risk_occurrence', old: null, new: 2 },
          risk_score: { field: 'risk_score', old: null, new: 6 },
          risk_severity: { field: 'risk_severity', old: null, new: 3 },
          stage: { field: 'stage', old: 'triage', new: 'containment' },
        });
        assert.deepEqual(await writeCapaProjection(trx, capa, 1, projection('triage')), [], 'an older revision changes nothing');
        assert.equal((await trx('capas').where({ number }).first('stage')).stage, 'containment');
      } finally {
        await trx.rollback();
      }
    });

    it("records which patient fields changed with hashes of their old and new values, never the values", async () => {
      const patient = await createPatient(p, u.carla, { address: '1 Elm Street' });
      const family = marker('Lq');
      const res = await p.api('PATCH', patientUrl(patient.id), { key: u.carla.apiKey, body: { familyName: family, address: null } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const [event] = await eventsOf('patient', patient.id, 'patient.updated');
      const changes = byField(event.details.changes as Change[]);
      assert.deepEqual(Object.keys(changes).sort(), ['address', 'familyName']);
      assert.deepEqual(changes.familyName, { field: 'familyName', old: phiDigest(patient.familyName), new: phiDigest(family) });
      assert.deepEqual(changes.address, { field: 'address', old: phiDigest('1 Elm Street'), new: null });
      const text = JSON.stringify(event.details);
      assert.ok(!text.includes(family) && !text.includes(patient.familyName) && !text.includes('Elm'), 'no PHI value in the trail');
      // The values themselves are in the patient's versions, each with who recorded it.
      const versions = await db()('patient_versions').where({ patient_id: patient.id }).orderBy('version').select('version', 'family_name', 'address', 'recorded_by');
      assert.deepEqual(versions, [
        { version: 1, family_name: patient.familyName, address: '1 Elm Street', recorded_by: u.carla.actor.userId },
        { version: 2, family_name: family, address: null, recorded_by: u.carla.actor.userId },
      ]);
      await assert.rejects(
        testEnv().appDb('patient_versions').where({ patient_id: patient.id, version: 1 }).update({ family_name: 'Rewritten' }),
        /patient versions are kept/,
      );
    });
  });
});
