import assert from 'node:assert/strict';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { enterResultUpdate, verifyResultUpdate } from '../../common/results';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';
import { mustAnalysisAct, readAnalysis, routedSample, testCode } from './support';

describe('results: an action sent straight to Temporal without a grant from labflow', function () {
  this.timeout(120_000);
  let p: Platform;
  let u: Record<'doc' | 'tech' | 'tech2', TestUser>;
  before(async () => {
    p = await startPlatform();
    u = await makeUsers({ doc: ['clinician'], tech: ['lab_technician'], tech2: ['lab_technician'] });
  });
  after(() => p.stop());

  it('is refused by the recording step, records nothing and is a security event', async () => {
    const test = await testCode();
    const accession = await routedSample(p, u.doc, u.tech, [test]);
    const workflowId = `analysis:${accession}:${test}`;
    const { db, client } = testEnv();
    const analysis = await db('analyses').where({ workflow_id: workflowId }).first('id');
    const [entry] = await db('analysis_entries')
      .insert({ analysis_id: analysis.id, kind: 'numeric', numeric_value: 1, unit: 'mmol/L', performed_by: 'x', entered_by: u.tech.actor.userId })
      .returning('id');
    const forged = { actor: u.tech.actor, grant: 'g'.repeat(43), entryId: entry.id };
    await assert.rejects(client.workflow.getHandle(workflowId).executeUpdate(enterResultUpdate, { args: [forged] }), (err: unknown) => {
      assert.ok(err instanceof WorkflowUpdateFailedError);
      assert.equal((err.cause as { type?: string }).type, 'GrantRefused');
      return true;
    });
    assert.equal((await readAnalysis(p, u.tech, accession, test)).state, 'pending');
    const refused = await db('audit_events').where({ entity_type: 'analysis', entity_id: workflowId, action: 'security.grant_refused' });
    assert.equal(refused.length, 1);

    // After the refusal the run still takes a proven action.
    await mustAnalysisAct(p, u.tech, accession, test, 'result', { kind: 'numeric', value: 4, unit: 'mmol/L', performedBy: 'bench 1' });
    await mustAnalysisAct(p, u.tech, accession, test, 'submit');
    // A forged verification naming another person is refused as well.
    const signature = { meaning: 'verification', contentHash: 'a'.repeat(64), signedAt: new Date().toISOString() };
    await assert.rejects(
      client.workflow.getHandle(workflowId).executeUpdate(verifyResultUpdate, { args: [{ actor: u.tech2.actor, grant: 'h'.repeat(43), signature }] }),
      WorkflowUpdateFailedError,
    );
    const after = await readAnalysis(p, u.tech, accession, test);
    assert.deepEqual([after.state, after.verifications], ['to_be_verified', []]);
  });
});
