import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createCapa } from '../capa/support';
import { approve, createDraft, submit, versionPath, waitForState } from '../helpers/documents';
import { driftsFrom, responseRecorder } from '../helpers/openapi-conformance';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { register, waitForRow } from '../sample-intake/support';
import { oneStage } from './support';

/**
 * What the API really answers, checked against what its OpenAPI document declares: a representative walk through
 * every area of the API, successes and refusals, each answer validated against the declared schema of its status.
 */
describe('the API answers what its OpenAPI document declares', function () {
  this.timeout(120_000);
  const recorder = responseRecorder();
  let p: Platform;
  let u: Record<'admin' | 'author' | 'rita' | 'control' | 'qa' | 'tech' | 'doc' | 'privacy' | 'it', TestUser>;

  before(async () => {
    p = await startPlatform({ onResponse: recorder.middleware });
    u = await makeUsers({
      admin: ['admin'],
      author: ['author'],
      rita: ['reviewer'],
      control: ['document_control'],
      qa: ['qa_manager'],
      tech: ['lab_technician'],
      doc: ['clinician'],
      privacy: ['privacy_officer'],
      it: ['it_operator'],
    });
  });
  after(() => p?.stop());

  /** Runs a walk, then validates every answer it got against the document the API serves. */
  const conforms = (walk: () => Promise<void>, atLeast: number) => async () => {
    const doc = (await p.api('GET', '/api/v1/openapi.json')).body;
    const start = recorder.exchanges.length;
    await walk();
    const { drifts, checked } = driftsFrom(doc, recorder.exchanges.slice(start));
    assert.deepEqual(drifts, [], 'answers that differ from the document');
    assert.ok(checked.size >= atLeast, `${checked.size} operation and status pairs checked: ${[...checked].join(', ')}`);
  };

  const ok = async (method: string, path: string, key: string | undefined, body?: unknown, status?: number) => {
    const res = await p.api(method, path, { key, body });
    if (status !== undefined) assert.equal(res.status, status, `${method} ${path}: ${JSON.stringify(res.body)}`);
    else assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };

  it('documents, their review and the inbox', conforms(async () => {
    await ok('GET', '/api/v1/me', u.author.apiKey);
    await ok('GET', '/api/v1/routing-templates', u.author.apiKey);
    await ok('GET', '/api/v1/routing-templates/form', u.author.apiKey);
    const draft = await createDraft(p, u.author);
    await ok('GET', '/api/v1/documents?limit=5', u.author.apiKey);
    await ok('GET', `/api/v1/documents/${draft.number}`, u.author.apiKey);
    await ok('PATCH', `/api/v1/documents/${draft.number}`, u.control.apiKey, { title: 'Pipette calibration (rev.)' });
    const routing = oneStage([u.rita]);
    const { workflowId } = await submit(p, u.author, draft.number, draft.version, routing);
    await ok('POST', `${versionPath(draft.number, draft.version)}/submit`, u.author.apiKey, routing, 409);
    await waitForState(p, u.author.apiKey, draft.number, draft.version, 'in_review');
    await ok('GET', versionPath(draft.number, draft.version), u.author.apiKey);
    await ok('GET', `${versionPath(draft.number, draft.version)}/content`, u.author.apiKey);
    await ok('GET', `/api/v1/workflows/${encodeURIComponent(workflowId)}`, u.control.apiKey);
    await waitFor(async () => {
      const tasks = await ok('GET', '/api/v1/tasks?mine=1&state=open', u.rita.apiKey);
      return tasks.items.length ? tasks : null;
    }, 'the review task');
    const decided = await approve(p, u.rita, draft.number, draft.version, draft.contentHash);
    assert.equal(decided.status, 200, JSON.stringify(decided.body));
    await ok('GET', `${versionPath(draft.number, draft.version)}/signatures`, u.author.apiKey);
    await ok('GET', `/api/v1/documents/${draft.number}/audit`, u.qa.apiKey);
    const notes = await ok('GET', '/api/v1/notifications', u.rita.apiKey);
    if (notes.items[0]) await ok('POST', `/api/v1/notifications/${notes.items[0].id}/read`, u.rita.apiKey, undefined, 204);

    // refusals
    await ok('GET', '/api/v1/documents/NOPE-1', u.author.apiKey, undefined, 404);
    await ok('GET', '/api/v1/documents?limit=0', u.author.apiKey, undefined, 400);
    await ok('GET', '/api/v1/me', undefined, undefined, 401);
    await ok('GET', `/api/v1/documents/${draft.number}/audit`, u.author.apiKey, undefined, 403);
    await ok('POST', '/api/v1/documents', u.author.apiKey, { title: 'x', docType: 'form', extra: 1 }, 400);
  }, 15));

  it('identity, operations and the open routes', conforms(async () => {
    const name = `conf.${randomBytes(3).toString('hex')}`;
    await ok('POST', '/api/v1/users', u.admin.apiKey, { username: name, printedName: 'Conformance', email: `${name}@lab.test`, roles: ['author'] }, 201);
    await ok('PATCH', `/api/v1/users/${name}`, u.admin.apiKey, { printedName: 'Conformance Tester' });
    await ok('PATCH', `/api/v1/users/${name}`, u.admin.apiKey, { roles: ['author', 'reviewer'] }, 422);
    await ok('GET', `/api/v1/users/${name}`, u.admin.apiKey);
    await ok('GET', '/api/v1/users', u.admin.apiKey);
    await ok('GET', '/api/v1/admin/audit/verify', u.qa.apiKey);
    const key = await ok('POST', '/api/v1/me/api-keys', u.author.apiKey, { name: 'conformance' }, 201);
    await ok('GET', '/api/v1/me/api-keys', u.author.apiKey);
    await ok('POST', `/api/v1/me/api-keys/${key.id}/rotate`, u.author.apiKey, {}, 201);
    const spare = await ok('POST', '/api/v1/me/api-keys', u.author.apiKey, { name: 'spare' }, 201);
    await ok('DELETE', `/api/v1/me/api-keys/${spare.id}`, u.author.apiKey, undefined, 200);
    await ok('DELETE', `/api/v1/me/api-keys/${key.id}`, u.author.apiKey, undefined, 409); // rotated: revoked already
    await ok('GET', `/api/v1/users/${u.author.username}/api-keys`, u.admin.apiKey);
    await ok('POST', '/api/v1/enrolment', undefined, { token: `lfe_${'a'.repeat(43)}`, password: 'x' }, 404);
    await ok('PUT', '/api/v1/me/preferences', u.author.apiKey, { digest: true });
    await ok('GET', '/api/v1/schedules', u.it.apiKey);
    await ok('GET', '/api/v1/backups', u.it.apiKey);
    await ok('GET', '/api/v1/erp-sync/runs', u.it.apiKey);
    await ok('GET', '/api/v1/erp-sync/cursors', u.it.apiKey);
    await ok('GET', '/api/v1/erp-sync/dead-letters', u.it.apiKey);
    await ok('GET', '/healthz', undefined);
    await ok('GET', '/readyz', undefined);
    await ok('GET', '/metrics', undefined);
    await ok('GET', '/api/v1/openapi.json', undefined);
    await ok('GET', '/api/docs', undefined);
    await ok('GET', '/api/docs/start.js', undefined);
    await ok('POST', '/codec/decode', u.it.apiKey, { payloads: [{ metadata: { encoding: Buffer.from('json/plain').toString('base64') }, data: Buffer.from('1').toString('base64') }] });
    await ok('POST', '/codec/decode', undefined, { payloads: [] }, 401);
    await ok('POST', '/api/v1/webhooks/nowhere', undefined, {}, 401);
  }, 15));

  it('CAPA, samples, patients and summaries', conforms(async () => {
    const capa = await createCapa(p, u.qa);
    await ok('GET', '/api/v1/capas', u.qa.apiKey);
    await ok('GET', `/api/v1/capas/${capa.number}`, u.qa.apiKey);
    await ok('GET', `/api/v1/capas/${capa.number}/audit`, u.qa.apiKey);
    await ok('POST', `/api/v1/capas/${capa.number}/triage`, u.qa.apiKey, { decision: 'unfounded', reason: 'not a systemic problem' });

    const sample = await register(p, u.doc);
    await waitForRow(sample.accession, 'expected');
    await ok('GET', `/api/v1/samples/${sample.accession}`, u.tech.apiKey);
    await ok('POST', `/api/v1/samples/${sample.accession}/receive`, u.tech.apiKey, { location: 'Bench' });
    await ok('POST', `/api/v1/samples/${sample.accession}/accept`, u.tech.apiKey, undefined, 409);
    await ok('POST', `/api/v1/samples/${sample.accession}/receive`, u.author.apiKey, { location: 'Bench' }, 403);
    await ok('GET', `/api/v1/samples/${sample.accession}/custody`, u.tech.apiKey);
    await ok('GET', '/api/v1/samples', u.tech.apiKey);
    await ok('GET', '/api/v1/sample-types', u.tech.apiKey);
    await ok('GET', '/api/v1/sample-held-orders', u.tech.apiKey);
    await ok('POST', '/api/v1/sample-sources', u.admin.apiKey, { name: `src-${randomBytes(3).toString('hex')}` }, 201);

    const patient = await ok('POST', '/api/v1/patients', u.doc.apiKey, { givenName: 'Ada', familyName: 'Lovelace', dateOfBirth: '1990-01-01' }, 201);
    await ok('GET', '/api/v1/patients', u.doc.apiKey);
    await ok('GET', `/api/v1/patients/${patient.id}`, u.doc.apiKey);
    const note = await ok('POST', `/api/v1/patients/${patient.id}/notes`, u.doc.apiKey, { noteTime: new Date().toISOString(), subjective: 'Headache for two days.' }, 201);
    await ok('GET', `/api/v1/patients/${patient.id}/notes`, u.doc.apiKey);
    await ok('GET', `/api/v1/patients/${patient.id}/notes/${note.id}`, u.doc.apiKey);
    await ok('GET', `/api/v1/patients/${patient.id}/notes/${note.id}/versions`, u.doc.apiKey);
    await ok('GET', `/api/v1/patients/${patient.id}/clinicians`, u.doc.apiKey);
    await ok('GET', `/api/v1/patients/${patient.id}/retention`, u.doc.apiKey);
    await ok('GET', `/api/v1/patients/${patient.id}/summaries`, u.doc.apiKey);
    await ok('GET', `/api/v1/patients/${patient.id}/access-log`, u.privacy.apiKey);
    await ok('GET', `/api/v1/patients/${patient.id}/break-glass`, u.privacy.apiKey);
    await ok('GET', `/api/v1/patients/${patient.id}`, u.admin.apiKey, undefined, 403);
  }, 15));
});
