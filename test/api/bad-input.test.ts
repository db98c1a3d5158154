import assert from 'node:assert/strict';
import { request } from 'node:http';
import { randomUUID } from 'node:crypto';
import { workflowIds } from '../../common/ids';
import { addVersion, createDraft, submit, versionPath } from '../helpers/documents';
import { startPlatform, type ApiResponse, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { testEnv } from '../setup/env';
import { assertNoRun, assertProblem, oneStage, refused, underReview, userSlot } from './support';

describe('bad input over the API is refused with a problem and leaves nothing behind', () => {
  let p: Platform;
  let u: Record<'author' | 'other' | 'rita' | 'rick' | 'control' | 'clinician' | 'admin', TestUser>;

  before(async () => {
    p = await startPlatform();
    u = await makeUsers({
      author: ['author'],
      other: ['author'],
      rita: ['reviewer'],
      rick: ['reviewer'],
      control: ['document_control'],
      clinician: ['clinician'],
      admin: ['admin'],
    });
  });
  after(() => p.stop());

  const newDocument = (key: string, body: unknown) => p.api('POST', '/api/v1/documents', { key, body });

  describe('request bodies', () => {
    it('answers 400 malformed-json to a body that is not valid JSON, and creates no document', async () => {
      const res = await refused(() =>
        p.api('POST', '/api/v1/documents', { key: u.author.apiKey, raw: '{"title": "Pipettes", "docType":' }),
      );
      assertProblem(res, 400, 'malformed-json');
    });

    it('answers 400 malformed-json to a submission cut short, and starts no run', async () => {
      const { number, version } = await createDraft(p, u.author);
      const res = await refused(
        () => p.api('POST', `${versionPath(number, version)}/submit`, { key: u.author.apiKey, raw: '{"routing": [{"name": "Review"' }),
        { notStarted: [workflowIds.documentApproval(number, version)] },
      );
      assertProblem(res, 400, 'malformed-json');
    });

    it('answers 415 to a body that is not sent as JSON', async () => {
      const res = await refused(() =>
        p.api('POST', '/api/v1/documents', {
          key: u.author.apiKey,
          raw: 'title=Pipettes&docType=sop',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        }),
      );
      assertProblem(res, 415, 'unsupported-media-type');
    });

    it('names the missing field when a document is created without a title', async () => {
      const res = await refused(() => newDocument(u.author.apiKey, { docType: 'sop' }));
      assertProblem(res, 400, 'validation', 'body.title');
    });

    it('names the field when a title is sent as a number', async () => {
      const res = await refused(() => newDocument(u.author.apiKey, { title: 42, docType: 'sop' }));
      assertProblem(res, 400, 'validation', 'body.title');
      assert.equal(res.body.errors.length, 1, JSON.stringify(res.body));
    });

    it('names the field when a title is only blanks', async () => {
      const res = await refused(() => newDocument(u.author.apiKey, { title: '   ', docType: 'sop' }));
      assertProblem(res, 400, 'validation', 'body.title');
    });

    it('names the field when the document type is not one it knows', async () => {
      const res = await refused(() => newDocument(u.author.apiKey, { title: 'Pipettes', docType: 'poem' }));
      assertProblem(res, 400, 'validation', 'body.docType');
    });

    it('names the unknown field when a body carries one the API does not know', async () => {
      const res = await refused(() => newDocument(u.author.apiKey, { title: 'Pipettes', docType: 'sop', colour: 'red' }));
      assertProblem(res, 400, 'validation', 'body.colour');
    });

    it('refuses a JSON array where an object is expected', async () => {
      const res = await refused(() => p.api('POST', '/api/v1/documents', { key: u.author.apiKey, raw: '[]' }));
      assertProblem(res, 400, 'validation', 'body');
    });

    it('refuses a JSON null body, naming the missing fields', async () => {
      const res = await refused(() => p.api('POST', '/api/v1/documents', { key: u.author.apiKey, raw: 'null' }));
      assertProblem(res, 400, 'validation', 'body.title');
      assertProblem(res, 400, 'validation', 'body.docType');
    });

    it('refuses a document number that is not one, in the body', async () => {
      const res = await refused(() => newDocument(u.author.apiKey, { title: 'Pipettes', docType: 'sop', number: 'doc 42' }));
      assertProblem(res, 400, 'validation', 'body.number');
    });

    it('refuses a version that is not a number in the path', async () => {
      const { number } = await createDraft(p, u.author);
      assertProblem(
        await p.api('GET', `/api/v1/documents/${number}/versions/first`, { key: u.author.apiKey }),
        400,
        'validation',
        'params.version',
      );
      assertProblem(
        await p.api('GET', `/api/v1/documents/${number}/versions/1.5`, { key: u.author.apiKey }),
        400,
        'validation',
        'params.version',
      );
      const res = await refused(() =>
        p.api('POST', `/api/v1/documents/${number}/versions/0/submit`, { key: u.author.apiKey, body: oneStage([u.rita]) }),
      );
      assertProblem(res, 400, 'validation', 'params.version');
    });

    it('refuses a document number that is not one, in the path', async () => {
      const res = await refused(() =>
        p.api('POST', '/api/v1/documents/doc%2042/versions', { key: u.author.apiKey, body: { content: 'text' } }),
      );
      assertProblem(res, 400, 'validation', 'params.number');
    });

    it('refuses query parameters of the wrong type', async () => {
      assertProblem(await p.api('GET', '/api/v1/documents?limit=lots', { key: u.author.apiKey }), 400, 'validation', 'query.limit');
      assertProblem(await p.api('GET', '/api/v1/documents?limit=5000', { key: u.author.apiKey }), 400, 'validation', 'query.limit');
      assertProblem(await p.api('GET', '/api/v1/tasks?state=finished', { key: u.author.apiKey }), 400, 'validation', 'query.state');
      assertProblem(await p.api('GET', '/api/v1/tasks?mine=yes', { key: u.author.apiKey }), 400, 'validation', 'query.mine');
    });

    it('refuses a version without content', async () => {
      const { number } = await createDraft(p, u.author);
      await refused(() => p.api('POST', `/api/v1/documents/${number}/versions`, { key: u.author.apiKey, body: { content: 7 } })).then(
        (res) => assertProblem(res, 400, 'validation', 'body.content'),
      );
    });

    it('refuses a submission without a routing, naming the field, and starts no run', async () => {
      const { number, version } = await createDraft(p, u.author);
      const res = await refused(() => p.api('POST', `${versionPath(number, version)}/submit`, { key: u.author.apiKey, body: {} }), {
        notStarted: [workflowIds.documentApproval(number, version)],
      });
      assertProblem(res, 400, 'validation', 'body.routing');
    });

    it('refuses a submission whose due date is not a duration, and starts no run', async () => {
      const { number, version } = await createDraft(p, u.author);
      const body = { routing: [{ name: 'Review', assignees: [userSlot(u.rita)], due: 'soon' }] };
      const res = await refused(() => p.api('POST', `${versionPath(number, version)}/submit`, { key: u.author.apiKey, body }), {
        notStarted: [workflowIds.documentApproval(number, version)],
      });
      assertProblem(res, 400, 'validation', 'body.routing.0.due');
    });

    it('answers 422 unknown-user to a routing naming someone who does not exist, and starts no run', async () => {
      const { number, version } = await createDraft(p, u.author);
      const body = { routing: [{ name: 'Review', assignees: [userSlot(u.rita), { user: 'nobody.here' }] }] };
      const res = await refused(() => p.api('POST', `${versionPath(number, version)}/submit`, { key: u.author.apiKey, body }), {
        notStarted: [workflowIds.documentApproval(number, version)],
      });
      assertProblem(res, 422, 'unknown-user', 'body.routing.0.assignees.1');
    });
  });

  describe('routing', () => {
    async function submitRefused(routing: unknown[]) {
      const { number, version } = await createDraft(p, u.author);
      return refused(() => p.api('POST', `${versionPath(number, version)}/submit`, { key: u.author.apiKey, body: { routing } }), {
        notStarted: [workflowIds.documentApproval(number, version)],
      });
    }

    it('refuses a routing with no stages', async () => {
      assertProblem(await submitRefused([]), 400, 'validation', 'body.routing');
    });

    it('refuses a routing with a stage that has nobody in it', async () => {
      const res = await submitRefused([
        { name: 'Review', assignees: [userSlot(u.rita)] },
        { name: 'Approval', assignees: [] },
      ]);
      assertProblem(res, 400, 'validation', 'body.routing.1.assignees');
    });

    it('refuses a k-of-n stage that needs more approvals than it has assignees', async () => {
      const res = await submitRefused([
        { name: 'Review', rule: { type: 'k_of_n', k: 3 }, assignees: [userSlot(u.rita), userSlot(u.rick)] },
      ]);
      assertProblem(res, 422, 'invalid-routing', 'body.routing.0.rule.k');
    });

    it('refuses a k-of-n stage that needs no approval at all', async () => {
      const res = await submitRefused([{ name: 'Review', rule: { type: 'k_of_n', k: 0 }, assignees: [userSlot(u.rita)] }]);
      assertProblem(res, 400, 'validation', 'body.routing.0.rule.k');
    });

    it('refuses a routing that makes the author a reviewer of their own version', async () => {
      const res = await submitRefused([
        { name: 'Review', assignees: [userSlot(u.rita)] },
        { name: 'Approval', assignees: [userSlot(u.author)] },
      ]);
      assertProblem(res, 422, 'invalid-routing', 'body.routing.1.assignees');
      assert.match(res.body.detail, /author/);
    });

    it('refuses a stage that lists the same reviewer twice', async () => {
      const res = await submitRefused([{ name: 'Review', assignees: [userSlot(u.rita), userSlot(u.rita)] }]);
      assertProblem(res, 422, 'invalid-routing', 'body.routing.0.assignees');
    });
  });

  describe('unknown records and runs', () => {
    it('answers 404 for a document that does not exist', async () => {
      assertProblem(await p.api('GET', '/api/v1/documents/NOPE-404', { key: u.author.apiKey }), 404, 'not-found');
      const res = await refused(() =>
        p.api('POST', '/api/v1/documents/NOPE-404/versions', { key: u.author.apiKey, body: { content: 'x' } }),
      );
      assertProblem(res, 404, 'not-found');
    });

    it('answers 404 for a version that does not exist, and submitting it starts no run', async () => {
      const { number } = await createDraft(p, u.author);
      assertProblem(await p.api('GET', versionPath(number, 9), { key: u.author.apiKey }), 404, 'not-found');
      assertProblem(await p.api('GET', `${versionPath(number, 9)}/content`, { key: u.author.apiKey }), 404, 'not-found');
      const res = await refused(
        () => p.api('POST', `${versionPath(number, 9)}/submit`, { key: u.author.apiKey, body: oneStage([u.rita]) }),
        {
          notStarted: [workflowIds.documentApproval(number, 9)],
        },
      );
      assertProblem(res, 404, 'not-found');
    });

    it('answers 404 to a decision on a version that does not exist', async () => {
      const { number } = await createDraft(p, u.author);
      const res = await refused(() =>
        p.api('POST', `${versionPath(number, 4)}/decisions`, { key: u.rita.apiKey, body: { decision: 'reject', comment: 'no' } }),
      );
      assertProblem(res, 404, 'not-found');
    });

    it('answers 404 for a workflow run that does not exist, and cancelling it records nothing', async () => {
      const id = `document-approval:NOPE-1:v${Date.now()}`;
      assertProblem(await p.api('GET', `/api/v1/workflows/${id}`, { key: u.control.apiKey }), 404, 'not-found');
      const res = await refused(
        () => p.api('POST', `/api/v1/workflows/${id}/cancel`, { key: u.admin.apiKey, body: { reason: 'tidy up' } }),
        {
          notStarted: [id],
        },
      );
      assertProblem(res, 404, 'not-found');
    });

    it('answers 404 for a notification that does not exist, and 400 for one whose ID is not a UUID', async () => {
      assertProblem(await p.api('POST', `/api/v1/notifications/${randomUUID()}/read`, { key: u.author.apiKey }), 404, 'not-found');
      assertProblem(await p.api('POST', '/api/v1/notifications/42/read', { key: u.author.apiKey }), 400, 'validation', 'params.id');
    });
  });

  describe('conflicts', () => {
    it('answers 409 with the existing workflowId when the same version is submitted twice', async () => {
      const { number, version } = await createDraft(p, u.author);
      const first = await submit(p, u.author, number, version, oneStage([u.rita]));
      const res = await refused(
        () => p.api('POST', `${versionPath(number, version)}/submit`, { key: u.author.apiKey, body: oneStage([u.rick]) }),
        {
          runs: [first.workflowId],
        },
      );
      assertProblem(res, 409, 'already-submitted');
      assert.equal(res.body.workflowId, first.workflowId);
      const described = await testEnv().client.workflow.getHandle(first.workflowId).describe();
      assert.equal(described.runId, first.runId, 'the first run is the only one');
    });

    it('starts one run when the same version is submitted twice at once, and tells the other caller which', async () => {
      const { number, version } = await createDraft(p, u.author);
      const send = () => p.api('POST', `${versionPath(number, version)}/submit`, { key: u.author.apiKey, body: oneStage([u.rita]) });
      const answers: ApiResponse[] = await Promise.all([send(), send(), send()]);
      const accepted = answers.filter((r) => r.status === 202);
      assert.equal(accepted.length, 1, JSON.stringify(answers.map((r) => r.body)));
      const workflowId = workflowIds.documentApproval(number, version);
      for (const res of answers.filter((r) => r.status !== 202)) {
        assertProblem(res, 409, 'already-submitted');
        assert.equal(res.body.workflowId, workflowId);
      }
      let runs = 0;
      for await (const _run of testEnv().client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) runs += 1;
      assert.ok(runs <= 1, `${runs} runs listed`);
      assert.equal((await testEnv().client.workflow.getHandle(workflowId).describe()).runId, accepted[0].body.runId);
    });

    it('answers 409 open-revision to a second open revision of a document', async () => {
      const { number } = await createDraft(p, u.author, 'first draft');
      const res = await refused(() =>
        p.api('POST', `/api/v1/documents/${number}/versions`, { key: u.author.apiKey, body: { content: 'rival' } }),
      );
      assertProblem(res, 409, 'open-revision');
      assert.equal(res.body.openVersion, 1);
    });

    it('answers 409 open-revision while the only version is still in review', async () => {
      const { number } = await underReview(p, u.author, oneStage([u.rita]));
      const res = await refused(() =>
        p.api('POST', `/api/v1/documents/${number}/versions`, { key: u.author.apiKey, body: { content: 'v2' } }),
      );
      assertProblem(res, 409, 'open-revision');
    });

    it('answers 409 number-taken to a document number already in use', async () => {
      const { number } = await createDraft(p, u.author);
      const res = await refused(() => newDocument(u.author.apiKey, { title: 'Twin', docType: 'sop', number }));
      assertProblem(res, 409, 'number-taken');
    });

    it('lets a new version be added once the open one is closed', async () => {
      const { number, path } = await underReview(p, u.author, oneStage([u.rita]));
      const withdrawn = await p.api('POST', `${path}/withdraw`, { key: u.author.apiKey, body: { reason: 'wrong template' } });
      assert.equal(withdrawn.status, 200, JSON.stringify(withdrawn.body));
      assert.equal((await addVersion(p, u.author, number, 'second try')).version, 2);
    });
  });

  describe('authentication and roles', () => {
    it('answers 401 with a WWW-Authenticate challenge to a request without an API key', async () => {
      const res = await refused(() => newDocument('', { title: 'Pipettes', docType: 'sop' }));
      assertProblem(res, 401, 'unauthenticated');
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer /);
    });

    it('answers 401 to an API key nobody holds', async () => {
      const forged = `lf_${'0'.repeat(12)}_${'A'.repeat(32)}`;
      assertProblem(await refused(() => newDocument(forged, { title: 'Pipettes', docType: 'sop' })), 401, 'unauthenticated');
      const tampered = u.author.apiKey.slice(0, -4) + 'AAAA';
      assertProblem(await refused(() => newDocument(tampered, { title: 'Pipettes', docType: 'sop' })), 401, 'unauthenticated');
      assertProblem(await p.api('GET', '/api/v1/me', { headers: { authorization: `Basic ${btoa('author:pw')}` } }), 401, 'unauthenticated');
    });

    it('answers 403 to a clinician creating a document', async () => {
      const res = await refused(() => newDocument(u.clinician.apiKey, { title: 'Pipettes', docType: 'sop' }));
      assertProblem(res, 403, 'forbidden');
    });

    it('answers 403 to a reviewer reading the audit trail', async () => {
      const { number } = await createDraft(p, u.author);
      assertProblem(await p.api('GET', `/api/v1/documents/${number}/audit`, { key: u.rita.apiKey }), 403, 'forbidden');
      assert.equal((await p.api('GET', `/api/v1/documents/${number}/audit`, { key: u.control.apiKey })).status, 200);
    });

    it('answers 403 to a non-admin cancelling a workflow, and the run goes on', async () => {
      const { workflowId } = await underReview(p, u.author, oneStage([u.rita]));
      const res = await refused(
        () => p.api('POST', `/api/v1/workflows/${workflowId}/cancel`, { key: u.control.apiKey, body: { reason: 'tidy up' } }),
        { runs: [workflowId] },
      );
      assertProblem(res, 403, 'forbidden');
      assert.equal((await testEnv().client.workflow.getHandle(workflowId).describe()).status.name, 'RUNNING');
    });

    it('answers 403 to an author submitting a version somebody else wrote, and starts no run', async () => {
      const { number, version } = await createDraft(p, u.author);
      const res = await refused(
        () => p.api('POST', `${versionPath(number, version)}/submit`, { key: u.other.apiKey, body: oneStage([u.rita]) }),
        {
          notStarted: [workflowIds.documentApproval(number, version)],
        },
      );
      assertProblem(res, 403, 'forbidden');
    });

    it('answers 403 to a non-admin creating a user', async () => {
      const body = { username: 'mallory', printedName: 'Mallory', email: 'mallory@lab.test', roles: ['admin'] };
      assertProblem(await p.api('POST', '/api/v1/users', { key: u.control.apiKey, body }), 403, 'forbidden');
      assert.equal(await testEnv().db('users').where({ username: 'mallory' }).first('id'), undefined);
    });
  });

  describe('size limits', () => {
    const oversized = () => JSON.stringify({ content: 'x'.repeat(64 * 1024 + 1) });

    it('answers 413 to a body over the 64 KiB limit, and writes nothing', async () => {
      const doc = await newDocument(u.author.apiKey, { title: 'Too big', docType: 'sop' });
      const res = await refused(() =>
        p.api('POST', `/api/v1/documents/${doc.body.number}/versions`, { key: u.author.apiKey, raw: oversized() }),
      );
      assertProblem(res, 413, 'payload-too-large');
    });

    it('answers 413 to an oversized body sent in chunks without a Content-Length', async () => {
      const res = await refused(
        () =>
          new Promise<ApiResponse>((resolve, reject) => {
            const req = request(`${p.baseUrl}/api/v1/documents`, {
              method: 'POST',
              headers: { authorization: `Bearer ${u.author.apiKey}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
            });
            req.on('response', (response) => {
              const chunks: Buffer[] = [];
              response.on('data', (c: Buffer) => chunks.push(c));
              response.on('end', () =>
                resolve({
                  status: response.statusCode ?? 0,
                  headers: new Headers(response.headers as Record<string, string>),
                  body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
                }),
              );
            });
            req.on('error', reject);
            const body = JSON.stringify({ title: 'y'.repeat(80 * 1024), docType: 'sop' });
            for (let i = 0; i < body.length; i += 8192) req.write(body.slice(i, i + 8192));
            req.end();
          }),
      );
      assertProblem(res, 413, 'payload-too-large');
    });

    it('accepts a body just under the limit', async () => {
      const doc = await newDocument(u.author.apiKey, { title: 'Big one', docType: 'sop' });
      const content = 'x'.repeat(64 * 1024 - 200);
      const res = await p.api('POST', `/api/v1/documents/${doc.body.number}/versions`, { key: u.author.apiKey, body: { content } });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    });
  });

  describe('routes', () => {
    it('answers 404 problem+json for a route that does not exist', async () => {
      assertProblem(await p.api('GET', '/api/v1/nothing-here', { key: u.author.apiKey }), 404, 'not-found');
      assertProblem(await p.api('GET', '/api/v2/documents'), 404, 'not-found');
      assertProblem(
        await refused(() => p.api('POST', '/api/v1/documents/DOC-1/publish', { key: u.author.apiKey, body: {} })),
        404,
        'not-found',
      );
    });

    it('answers 405 problem+json with Allow for a method the route does not take', async () => {
      const res = await refused(() => p.api('DELETE', '/api/v1/documents', { key: u.admin.apiKey }));
      assertProblem(res, 405, 'method-not-allowed');
      assert.match(res.headers.get('allow') ?? '', /POST/);
      assert.match(res.headers.get('allow') ?? '', /GET/);
      const put = await p.api('PUT', '/api/v1/tasks', { key: u.admin.apiKey, body: {} });
      assertProblem(put, 405, 'method-not-allowed');
      assertProblem(await p.api('POST', '/healthz'), 405, 'method-not-allowed');
      assertProblem(await p.api('PROPFIND', '/api/v1/documents', { key: u.admin.apiKey }), 501, 'not-implemented');
      const options = await p.api('OPTIONS', '/api/v1/documents');
      assert.equal(options.status, 200);
      assert.match(options.headers.get('allow') ?? '', /GET/);
    });
  });

  it('never leaves a run for a version whose submission was refused', async () => {
    const { number, version } = await createDraft(p, u.author);
    await p.api('POST', `${versionPath(number, version)}/submit`, { key: u.author.apiKey, body: { routing: [] } });
    await assertNoRun(workflowIds.documentApproval(number, version));
    const view = await p.api('GET', versionPath(number, version), { key: u.author.apiKey });
    assert.equal(view.body.state, 'draft');
    assert.equal(view.body.workflowId, null);
  });
});
