import assert from 'node:assert/strict';
import { precheckWorkflowId } from '../../common/document-precheck';
import { driftsFrom, responseRecorder } from '../helpers/openapi-conformance';
import { approve, createDraft, getVersion, submit, versionPath, waitForState } from '../helpers/documents';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { startSummaryRig, type SummaryRig } from '../soap-summary/support';
import { goodAnswer, sopText } from './precheck-support';

/**
 * The pre-check as reviewers meet it: submitting a version starts it, its findings are read over the API, and
 * whatever it finds or however it ends, the approval run's state and signatures are its own.
 */
describe('document pre-check on submission, over the API', () => {
  const recorder = responseRecorder();
  let rig: SummaryRig;
  let u: Record<'author' | 'rita' | 'april' | 'control' | 'tech', TestUser>;
  before(async () => {
    rig = await startSummaryRig({ platform: { onResponse: recorder.middleware } });
    u = await makeUsers({
      author: ['author'],
      rita: ['reviewer'],
      april: ['approver'],
      control: ['document_control'],
      tech: ['lab_technician'],
    });
  });
  after(() => rig.stop());

  const precheckUrl = (number: string, version: number) => `${versionPath(number, version)}/precheck`;
  /** Waits for the recording activity's row, then reads the pre-check as a reviewer would. */
  const finished = async (number: string, version: number) => {
    await waitFor(
      async () => {
        const row = await testEnv()
          .db('document_prechecks')
          .where({ workflow_id: precheckWorkflowId(number, version) })
          .first('stage');
        return row && row.stage !== 'running' ? row : undefined;
      },
      `the pre-check of ${number} v${version}`,
      60_000,
      150,
    );
    const res = await rig.p.api('GET', precheckUrl(number, version), { key: u.rita.apiKey });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body;
  };
  const draftOf = async (docType: 'form' | 'other') => {
    const text = sopText();
    for (const s of Object.values(rig.stubs)) s.focusOn(text.split('\n')[0]);
    return createDraft(rig.p, u.author, text, 'Pipette calibration', docType);
  };

  it('attaches the first provider’s findings to the review as advice, with provenance; a made-up quote is dropped and counted', async () => {
    const draft = await draftOf('form');
    const before = await rig.p.api('GET', precheckUrl(draft.number, 1), { key: u.rita.apiKey });
    assert.equal(before.status, 404);
    // The form's checklist has purpose-scope and records; audit-trail is not on it, and one quote is invented.
    rig.stubs.anthropic.script({
      kind: 'healthy',
      text: goodAnswer([{ itemId: 'records', status: 'met', evidence: 'Records are kept forever.', comment: '' }]),
    });
    const { workflowId } = await submit(rig.p, u.author, draft.number, 1, {
      routing: [{ name: 'Review', assignees: [{ user: u.rita.username }] }],
    });
    const view = await finished(draft.number, 1);
    assert.equal(view.stage, 'done');
    assert.equal(view.advisory, true);
    assert.equal(view.contentHash, draft.contentHash);
    assert.deepEqual(view.checklist, { docType: 'form', version: 1 });
    assert.deepEqual(
      view.findings.map((f: { itemId: string; status: string }) => `${f.itemId}:${f.status}`),
      ['purpose-scope:met', 'records:unclear'],
    );
    assert.equal(view.findings[0].evidence, 'Purpose: this procedure describes the gravimetric calibration of single-channel pipettes.');
    assert.deepEqual(view.dropped, {
      count: 2,
      items: [
        { itemId: 'audit-trail', reason: 'unknown_item' },
        { itemId: 'records', reason: 'quote_not_in_text' },
      ],
    });
    assert.equal(view.provenance.source, 'anthropic');
    assert.equal(view.provenance.model, 'claude-sonnet-4-5');
    assert.equal(view.provenance.aiGenerated, true);
    assert.equal(view.provenance.fallbackUsed, false);
    assert.match(view.provenance.promptHash, /^[0-9a-f]{64}$/);
    assert.deepEqual(
      view.provenance.attempts.map((a: { provider: string; outcome: string }) => `${a.provider}:${a.outcome}`),
      ['anthropic:succeeded'],
    );

    // Advice only: the review is where the submission left it, and it goes on exactly as without a pre-check.
    const version = await getVersion(rig.p, u.rita.apiKey, draft.number, 1);
    assert.equal(version.state, 'in_review');
    assert.equal(version.process.stages[0].status, 'active');
    assert.equal((await testEnv().db('signatures').where({ workflow_id: workflowId })).length, 0);
    const ok = await approve(rig.p, u.rita, draft.number, 1, draft.contentHash);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    await waitForState(rig.p, u.author.apiKey, draft.number, 1, 'effective');
    assert.equal((await testEnv().db('signatures').where({ workflow_id: workflowId })).length, 1);
    const audit = await testEnv()
      .db('audit_events')
      .where({ entity_type: 'document', entity_id: draft.number, actor: 'system:document-precheck' })
      .pluck('action');
    assert.deepEqual(audit, ['document.precheck_done']);

    // The run's history holds IDs and counts, never the text.
    const history = JSON.stringify(await testEnv().client.workflow.getHandle(precheckWorkflowId(draft.number, 1)).fetchHistory());
    assert.ok(!history.includes('gravimetric'), 'the document text is not in the pre-check run’s history');
  });

  it('a pre-check that fails (no checklist for the type) leaves the approval run’s state and signatures untouched', async () => {
    const draft = await draftOf('other');
    const routing = [
      { name: 'Review', assignees: [{ user: u.rita.username }] },
      { name: 'Approval', assignees: [{ user: u.april.username }] },
    ];
    const { workflowId } = await submit(rig.p, u.author, draft.number, 1, { routing });
    const view = await finished(draft.number, 1);
    assert.equal(view.stage, 'failed');
    assert.equal(view.failure, 'no_checklist');
    assert.deepEqual(view.findings, []);
    const run = testEnv().client.workflow.getHandle(precheckWorkflowId(draft.number, 1));
    await waitFor(async () => (await run.describe()).status.name === 'FAILED', 'the pre-check run to fail');

    const version = await getVersion(rig.p, u.rita.apiKey, draft.number, 1);
    assert.equal(version.state, 'in_review');
    assert.equal(version.process.stages[0].status, 'active');
    assert.equal((await testEnv().client.workflow.getHandle(workflowId).describe()).status.name, 'RUNNING');
    assert.equal((await approve(rig.p, u.rita, draft.number, 1, draft.contentHash)).status, 200);
    await waitFor(async () => (await getVersion(rig.p, u.rita.apiKey, draft.number, 1)).process?.stages[1]?.status === 'active', 'stage 2');
    assert.equal((await approve(rig.p, u.april, draft.number, 1, draft.contentHash)).status, 200);
    await waitForState(rig.p, u.author.apiKey, draft.number, 1, 'effective');
    const signatures = await testEnv().db('signatures').where({ workflow_id: workflowId }).orderBy('stage_index').pluck('username');
    assert.deepEqual(signatures, [u.rita.username, u.april.username]);
  });

  it('lets document control and QA version a type’s checklist, audited; refuses other roles and bad input, writing nothing', async () => {
    const url = '/api/v1/precheck-checklists/manual';
    const start = await rig.p.api('GET', url, { key: u.tech.apiKey });
    assert.equal(start.status, 200, JSON.stringify(start.body));
    const latest = start.body.versions[0].version;
    const items = [
      { id: 'scope', clause: 'ISO 13485:2016 4.2.2', lookFor: 'The scope of the quality management system', keywords: ['scope'] },
    ];

    assert.equal((await rig.p.api('PUT', url, { key: u.author.apiKey, body: { items } })).status, 403);
    const dup = await rig.p.api('PUT', url, { key: u.control.apiKey, body: { items: [...items, ...items] } });
    assert.equal(dup.status, 400, JSON.stringify(dup.body));
    assert.equal((await rig.p.api('PUT', url, { key: u.control.apiKey, body: { items: [] } })).status, 400);
    assert.equal((await rig.p.api('PUT', '/api/v1/precheck-checklists/memo', { key: u.control.apiKey, body: { items } })).status, 400);
    assert.equal((await rig.p.api('GET', url, { key: u.tech.apiKey })).body.versions[0].version, latest, 'nothing written');

    const saved = await rig.p.api('PUT', url, { key: u.control.apiKey, body: { items } });
    assert.equal(saved.status, 200, JSON.stringify(saved.body));
    assert.equal(saved.body.version, latest + 1);
    assert.equal(saved.body.createdBy, u.control.username);
    assert.deepEqual(saved.body.items, [{ ...items[0] }]);
    const after = await rig.p.api('GET', url, { key: u.tech.apiKey });
    assert.equal(after.body.versions.length, start.body.versions.length + 1);
    const audit = await testEnv()
      .db('audit_events')
      .where({ entity_type: 'precheck_checklist', entity_id: 'manual', actor: u.control.username })
      .orderBy('seq', 'desc')
      .first();
    assert.equal(audit.action, 'precheck_checklist.saved');
    assert.equal(audit.details.version, latest + 1);
    assert.deepEqual(audit.details.after, items);
  });

  it('answered every request above as its OpenAPI document declares', async () => {
    const doc = (await rig.p.api('GET', '/api/v1/openapi.json')).body;
    const { drifts, checked } = driftsFrom(doc, recorder.exchanges);
    assert.deepEqual(drifts, [], 'answers that differ from the document');
    for (const [method, tail] of [
      ['GET', '/versions/{version}/precheck 200'],
      ['GET', '/versions/{version}/precheck 404'],
      ['PUT', '/precheck-checklists/{docType} 200'],
      ['PUT', '/precheck-checklists/{docType} 400'],
    ]) {
      assert.ok(
        [...checked].some((c) => c.startsWith(method) && c.endsWith(tail)),
        `${method} …${tail} checked: ${[...checked].join(', ')}`,
      );
    }
  });
});

describe('document pre-check and the providers’ circuit breakers', () => {
  let rig: SummaryRig;
  let u: Record<'author' | 'rita', TestUser>;
  before(async () => {
    rig = await startSummaryRig({ circuitFailures: 2 });
    u = await makeUsers({ author: ['author'], rita: ['reviewer'] });
  });
  after(() => rig.stop());

  const precheckOf = async (docType: 'form') => {
    const draft = await createDraft(rig.p, u.author, sopText(), 'Pipette calibration', docType);
    await submit(rig.p, u.author, draft.number, 1, { routing: [{ name: 'Review', assignees: [{ user: u.rita.username }] }] });
    await waitFor(
      async () => {
        const row = await testEnv()
          .db('document_prechecks')
          .where({ workflow_id: precheckWorkflowId(draft.number, 1) })
          .first('stage');
        return row?.stage === 'done' ? row : undefined;
      },
      `the pre-check of ${draft.number}`,
      60_000,
      150,
    );
    return (await rig.p.api('GET', `${versionPath(draft.number, 1)}/precheck`, { key: u.rita.apiKey })).body;
  };
  const trail = (view: { provenance: { attempts: { provider: string; outcome: string }[] } }) =>
    view.provenance.attempts.map((a) => `${a.provider}:${a.outcome}`);

  it('opens the circuit of a provider that keeps failing, so the next pre-check skips it without calling', async () => {
    rig.stubs.anthropic.setDefault('server_error');
    rig.stubs.openai.setDefault({ kind: 'healthy', text: goodAnswer() });
    const first = await precheckOf('form');
    assert.deepEqual(trail(first), ['anthropic:server_error', 'anthropic:server_error', 'openai:succeeded']);
    assert.equal(first.provenance.fallbackUsed, true);
    const calls = rig.stubs.anthropic.count;
    const second = await precheckOf('form');
    assert.deepEqual(trail(second), ['anthropic:circuit_open', 'openai:succeeded']);
    assert.equal(second.provenance.source, 'openai');
    assert.equal(second.provenance.fallbackUsed, true);
    assert.equal(rig.stubs.anthropic.count, calls, 'no call to a provider whose circuit is open');
  });
});
