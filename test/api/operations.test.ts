import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import knex from 'knex';
import { createApp } from '../../api/app';
import { createAuthenticator } from '../../api/auth';
import { createUser } from '../../db/identity';
import { createDb, dropDatabase, ensureDatabase, type Db } from '../../db/knex';
import { migrateLatest } from '../../db/migrate';
import { createLogger } from '../../platform/logger';
import { workflowIds } from '../../common/ids';
import { approve, createDraft, versionPath, waitForRecord } from '../helpers/documents';
import { startPlatform, testApiConfig, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { assertProblem, oneStage, refused, serve, underReview } from './support';

const silent = createLogger({ LOG_LEVEL: 'silent', LOG_PRETTY: false }, 'test');

/** The real app over the given dependencies, as test/helpers/platform.ts assembles it. */
function appOver(db: Db, temporal: Client) {
  const config = testApiConfig('operations-unused');
  return createApp({ db, temporal, config, log: silent, authenticate: createAuthenticator(db, config.apiKeyCacheTtlMs) });
}

/** Every operation the API offers, with sample path values: the OpenAPI document must list each one. */
const OPERATIONS: [method: string, path: string][] = [
  ['post', '/api/v1/documents'],
  ['get', '/api/v1/documents'],
  ['get', '/api/v1/documents/{number}'],
  ['post', '/api/v1/documents/{number}/versions'],
  ['get', '/api/v1/documents/{number}/versions/{version}'],
  ['get', '/api/v1/documents/{number}/versions/{version}/content'],
  ['get', '/api/v1/documents/{number}/versions/{version}/signatures'],
  ['get', '/api/v1/documents/{number}/audit'],
  ['post', '/api/v1/documents/{number}/versions/{version}/submit'],
  ['post', '/api/v1/documents/{number}/versions/{version}/decisions'],
  ['post', '/api/v1/documents/{number}/versions/{version}/withdraw'],
  ['post', '/api/v1/documents/{number}/versions/{version}/obsolete'],
  ['post', '/api/v1/documents/{number}/versions/{version}/periodic-review'],
  ['post', '/api/v1/documents/{number}/versions/{version}/extend'],
  ['post', '/api/v1/documents/{number}/versions/{version}/reassign'],
  ['post', '/api/v1/documents/{number}/versions/{version}/revision'],
  ['get', '/api/v1/tasks'],
  ['get', '/api/v1/notifications'],
  ['post', '/api/v1/notifications/{id}/read'],
  ['get', '/api/v1/workflows/{workflowId}'],
  ['post', '/api/v1/workflows/{workflowId}/cancel'],
  ['get', '/api/v1/me'],
  ['post', '/api/v1/users'],
  ['get', '/api/v1/admin/audit/verify'],
];
const SAMPLE_PARAMS: Record<string, string> = {
  number: 'DOC-0001',
  version: '1',
  id: '00000000-0000-4000-8000-000000000000',
  workflowId: 'document-approval:DOC-0001:v1',
};

describe('the API in operation', () => {
  let p: Platform;
  let u: Record<'author' | 'rita' | 'rick' | 'april' | 'control' | 'qa' | 'admin', TestUser>;

  before(async () => {
    p = await startPlatform();
    u = await makeUsers({
      author: ['author'],
      rita: ['reviewer'],
      rick: ['reviewer'],
      april: ['approver'],
      control: ['document_control'],
      qa: ['qa_manager'],
      admin: ['admin'],
    });
  });
  after(() => p.stop());

  describe('health', () => {
    it('answers GET /healthz with 200 without an API key', async () => {
      const res = await p.api('GET', '/healthz');
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { status: 'ok' });
    });

    it('answers GET /readyz with 200 and every check ok', async () => {
      const res = await p.api('GET', '/readyz');
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const { canary, ...rest } = res.body;
      assert.deepEqual(rest, { status: 'ready', checks: { postgres: 'ok', temporal: 'ok' } });
      assert.ok(canary && typeof canary.status === 'string', 'readiness also reports the last health canary');
    });

    it('answers /readyz with a 503 problem naming postgres when the database is unreachable', async () => {
      const deadDb = knex({
        client: 'pg',
        connection: 'postgres://postgres@127.0.0.1:1/nothing',
        pool: { min: 0, max: 1 },
        log: { warn: () => undefined, error: () => undefined },
      });
      const app = await serve(appOver(deadDb, testEnv().client));
      try {
        const res = await app.api('GET', '/readyz');
        assertProblem(res, 503, 'not-ready');
        assert.match(res.body.detail, /postgres/);
        assert.doesNotMatch(res.body.detail, /temporal/);
        assert.match(res.body.checks.postgres, /^down/);
        assert.equal(res.body.checks.temporal, 'ok');
        assert.ok(Number(res.headers.get('retry-after')) > 0);

        // Requests that need the database say so with a 503 too, rather than a 500.
        assertProblem(await app.api('GET', '/api/v1/me', { key: u.author.apiKey }), 503, 'dependency-unavailable');
        assert.equal((await app.api('GET', '/healthz')).status, 200, 'liveness does not depend on the database');
      } finally {
        await app.close();
        await deadDb.destroy();
      }
    });

    it('answers /readyz with a 503 problem naming temporal when Temporal is unreachable', async () => {
      const connection = Connection.lazy({ address: '127.0.0.1:1' });
      const app = await serve(appOver(testEnv().db, new Client({ connection, dataConverter: testEnv().dataConverter })));
      const started = Date.now();
      try {
        const res = await app.api('GET', '/readyz');
        assertProblem(res, 503, 'not-ready');
        assert.match(res.body.detail, /temporal/);
        assert.doesNotMatch(res.body.detail, /postgres/);
        assert.match(res.body.checks.temporal, /^down/);
        assert.equal(res.body.checks.postgres, 'ok');
        // The check ends at its 2 s deadline (whichever of its timer and the gRPC deadline fires first), not after retries.
        assert.match(res.body.checks.temporal, /^down: (no answer within 2000 ms|.*deadline exceeded)/i, JSON.stringify(res.body.checks));
      } finally {
        await app.close();
        // The check's call ends at its deadline; closing the channel under a pending retry would throw.
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + 4000 - Date.now())));
        await connection.close();
      }
    });

    it('answers a request that needs Temporal with a 503 problem, not a 500, when Temporal is unreachable', async () => {
      // No gRPC retries, so the answer comes at once instead of after the client's default ~20 s of back-off.
      const connection = Connection.lazy({ address: '127.0.0.1:1', interceptors: [] });
      const app = await serve(appOver(testEnv().db, new Client({ connection, dataConverter: testEnv().dataConverter })));
      try {
        const res = await app.api('GET', '/api/v1/workflows/document-approval:DOC-0001:v1', { key: u.control.apiKey });
        assertProblem(res, 503, 'dependency-unavailable');
        assert.ok(Number(res.headers.get('retry-after')) > 0);
        const { number, version } = await createDraft(p, u.author);
        const submitted = await refused(
          () => app.api('POST', `${versionPath(number, version)}/submit`, { key: u.author.apiKey, body: oneStage([u.rita]) }),
          { notStarted: [workflowIds.documentApproval(number, version)] },
        );
        assertProblem(submitted, 503, 'dependency-unavailable');
      } finally {
        await app.close();
        await connection.close();
      }
    });
  });

  describe('observability', () => {
    it('counts requests in labflow_api_requests_total by route pattern and status', async () => {
      const { number } = await underReview(p, u.author, oneStage([u.rita]));
      for (let i = 0; i < 3; i++) assert.equal((await p.api('GET', `/api/v1/documents/${number}`, { key: u.author.apiKey })).status, 200);
      await p.api('GET', '/api/v1/documents/NOPE-1', { key: u.author.apiKey });
      await p.api('GET', '/api/v1/no-such-route');
      const res = await p.api('GET', '/metrics');
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
      const count = (labels: string) => {
        const line = (res.body as string).split('\n').find((l) => l.startsWith(`labflow_api_requests_total{${labels}}`));
        return line ? Number(line.split(' ').pop()) : 0;
      };
      assert.ok(count('method="GET",route="/api/v1/documents/:number",status="200"') >= 3, res.body);
      assert.ok(count('method="GET",route="/api/v1/documents/:number",status="404"') >= 1, res.body);
      assert.ok(count('method="GET",route="unmatched",status="404"') >= 1, res.body);
      assert.doesNotMatch(res.body, /route="\/api\/v1\/documents\/DOC-/, 'raw paths do not become labels');
      assert.match(res.body, /labflow_api_request_duration_seconds_bucket\{/);
    });

    it('serves an OpenAPI 3.1 document listing every route', async () => {
      const res = await p.api('GET', '/api/v1/openapi.json');
      assert.equal(res.status, 200);
      const doc = res.body;
      assert.equal(doc.openapi, '3.1.0');
      assert.equal(typeof doc.info.title, 'string');
      assert.equal(typeof doc.info.version, 'string');
      assert.ok(doc.components.securitySchemes.apiKey);
      for (const [method, path] of OPERATIONS) {
        const operation = doc.paths[path]?.[method];
        assert.ok(operation, `${method.toUpperCase()} ${path} is documented`);
        assert.ok(operation.summary && operation.responses, `${method} ${path} has a summary and responses`);
        const declared = (operation.parameters ?? []).filter((x: { in: string }) => x.in === 'path').map((x: { name: string }) => x.name);
        const inPath = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
        assert.deepEqual(declared.sort(), inPath.sort(), `${method} ${path} declares its path parameters`);
      }
      const create = doc.paths['/api/v1/documents'].post.requestBody.content['application/json'].schema;
      assert.deepEqual([...create.required].sort(), ['docType', 'title']);
      assert.ok(doc.paths['/api/v1/documents/{number}/versions/{version}/decisions'].post.requestBody);
      const listed = doc.paths['/api/v1/documents'].get.parameters.map((x: { name: string }) => x.name);
      assert.ok(listed.includes('limit') && listed.includes('state'), JSON.stringify(listed));
    });

    it('documents only routes that exist: each that takes an API key answers 401 without one, not 404 or 405', async () => {
      const doc = (await p.api('GET', '/api/v1/openapi.json')).body;
      type Operation = { security: Record<string, unknown>[] };
      for (const [path, operations] of Object.entries(doc.paths as Record<string, Record<string, Operation>>)) {
        for (const [method, operation] of Object.entries(operations)) {
          if (!operation.security.some((s) => 'apiKey' in s)) continue; // open, or signed by a webhook source
          const concrete = path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(SAMPLE_PARAMS[name]));
          const res = await p.api(method.toUpperCase(), concrete, method === 'get' ? {} : { body: {} });
          assertProblem(res, 401, 'unauthenticated');
        }
      }
    });

    it('echoes the caller X-Request-Id, and makes one up when none or a bad one is sent', async () => {
      const sent = await p.api('GET', '/api/v1/me', { key: u.author.apiKey, headers: { 'x-request-id': 'trace-42.abc_DEF' } });
      assert.equal(sent.headers.get('x-request-id'), 'trace-42.abc_DEF');
      const onProblem = await p.api('GET', '/api/v1/documents/NOPE-1', { key: u.author.apiKey, headers: { 'x-request-id': 'trace-43' } });
      assert.equal(onProblem.status, 404);
      assert.equal(onProblem.headers.get('x-request-id'), 'trace-43');
      const none = await p.api('GET', '/healthz');
      assert.match(none.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
      const bad = await p.api('GET', '/healthz', { headers: { 'x-request-id': 'has spaces; and <tags>' } });
      assert.match(bad.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    });
  });

  describe('workflow runs', () => {
    it('shows a run by its workflow ID: type, status, stage, search attributes and pending actions', async () => {
      const v = await underReview(p, u.author, oneStage([u.rita]));
      const res = await waitFor(async () => {
        const r = await p.api('GET', `/api/v1/workflows/${v.workflowId}`, { key: u.control.apiKey });
        return r.body.searchAttributes?.Assignees?.length ? r : null;
      }, 'assignees published');
      assert.equal(res.status, 200);
      assert.equal(res.body.workflowId, v.workflowId);
      assert.equal(res.body.type, 'documentApprovalWorkflow');
      assert.equal(res.body.status, 'RUNNING');
      assert.equal(res.body.taskQueue, p.taskQueue);
      assert.equal(res.body.stage, 'in_review');
      assert.equal(res.body.searchAttributes.EntityType, 'document');
      assert.equal(res.body.searchAttributes.EntityId, v.number);
      assert.deepEqual(res.body.searchAttributes.Assignees, [`user:${u.rita.username}`]);
      assert.ok(Date.parse(res.body.searchAttributes.DueAt) > Date.now());
      assert.deepEqual(res.body.pendingActions[0], { action: 'decide', by: [`user:${u.rita.username}`] });
      assert.deepEqual(
        res.body.pendingActions.map((a: { action: string }) => a.action),
        ['decide', 'reassign', 'extend', 'withdraw'],
      );
      assert.equal(res.body.state.state, 'in_review');
      assertProblem(await p.api('GET', `/api/v1/workflows/${v.workflowId}`, { key: u.rita.apiKey }), 403, 'forbidden');
    });

    it('lists the pending actions of any process: a supplier run offers the decisions its status allows, to QA', async () => {
      const supplier = `SUP-OPS-${randomBytes(3).toString('hex')}`;
      const workflowId = workflowIds.supplierQualification(supplier);
      const handle = await testEnv().client.workflow.start('supplierQualificationWorkflow', {
        workflowId,
        taskQueue: p.taskQueue,
        args: [{ supplier }],
      });
      try {
        const res = await waitFor(async () => {
          const r = await p.api('GET', `/api/v1/workflows/${workflowId}`, { key: u.qa.apiKey });
          return r.body.stage === 'pending' ? r : null;
        }, 'the supplier run to publish its stage');
        assert.equal(res.body.type, 'supplierQualificationWorkflow');
        assert.equal(res.body.searchAttributes.EntityType, 'supplier');
        assert.deepEqual(res.body.pendingActions, [
          { action: 'approve', by: ['role:qa_manager'] },
          { action: 'suspend', by: ['role:qa_manager'] },
          { action: 'disqualify', by: ['role:qa_manager'] },
        ]);
      } finally {
        await handle.terminate('test over');
      }
      const ended = await p.api('GET', `/api/v1/workflows/${workflowId}`, { key: u.qa.apiKey });
      assert.equal(ended.body.status, 'TERMINATED');
      assert.deepEqual(ended.body.pendingActions, [], 'a run that has ended has nothing pending');
    });

    it('answers 404 for a workflow ID that has no run', async () => {
      assertProblem(await p.api('GET', '/api/v1/workflows/no-such-run:0', { key: u.control.apiKey }), 404, 'not-found');
    });

    it('lets an admin cancel a document approval run: the version ends withdrawn and its open tasks are cancelled', async () => {
      const v = await underReview(p, u.author, oneStage([u.rita, u.rick]));
      assert.equal((await approve(p, u.rita, v.number, v.version, v.contentHash)).status, 200);
      const cancelPath = `/api/v1/workflows/${v.workflowId}/cancel`;
      assertProblem(
        await refused(() => p.api('POST', cancelPath, { key: u.admin.apiKey, body: {} }), { runs: [v.workflowId] }),
        400,
        'validation',
        'body.reason',
      );

      const res = await p.api('POST', cancelPath, { key: u.admin.apiKey, body: { reason: 'duplicate of DOC-0001' } });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.deepEqual(res.body, { workflowId: v.workflowId, status: 'cancel_requested' });

      await waitForRecord(p, u.author.apiKey, v.number, v.version, 'withdrawn');
      const handle = testEnv().client.workflow.getHandle(v.workflowId);
      await waitFor(async () => (await handle.describe()).status.name === 'CANCELLED', 'run cancelled');
      const tasks = await testEnv().db('tasks').where({ workflow_id: v.workflowId }).select('state', 'assignee_user_id');
      assert.deepEqual(tasks.map((t) => `${t.assignee_user_id === u.rita.actor.userId ? 'rita' : 'rick'}:${t.state}`).sort(), [
        'rick:cancelled',
        'rita:done',
      ]);
      const trail = await testEnv().db('audit_events').where({ entity_id: v.workflowId, action: 'workflow.cancel_requested' }).first();
      assert.equal(trail.actor, u.admin.username);
      assert.equal(trail.details.reason, 'duplicate of DOC-0001');
      const versionTrail = await p.api('GET', `/api/v1/documents/${v.number}/audit`, { key: u.control.apiKey });
      assert.ok(versionTrail.body.items.some((e: { action: string }) => e.action === 'document.withdrawn'));

      const again = await refused(() => p.api('POST', cancelPath, { key: u.admin.apiKey, body: { reason: 'once more' } }), {
        runs: [v.workflowId],
      });
      assertProblem(again, 409, 'run-finished');
    });

    it('keeps a task inbox per user and role, and closes tasks once they are done', async () => {
      const routing = {
        routing: [{ name: 'Review', rule: { type: 'all' }, assignees: [{ user: u.rita.username }, { role: 'approver' }] }],
      };
      const v = await underReview(p, u.author, routing);
      const inbox = async (who: TestUser, state: string) => {
        const res = await p.api('GET', `/api/v1/tasks?mine=1&state=${state}&limit=200`, { key: who.apiKey });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        return res.body.items.filter((t: { workflow_id: string }) => t.workflow_id === v.workflowId);
      };
      const [ritaTask] = await inbox(u.rita, 'open');
      assert.equal(ritaTask.assignee_user, u.rita.username);
      assert.equal(ritaTask.kind, 'document.review');
      assert.match(ritaTask.title, new RegExp(v.number));
      const [aprilTask] = await inbox(u.april, 'open');
      assert.equal(aprilTask.assignee_role, 'approver', 'a role task shows in the inbox of everyone holding the role');
      assert.deepEqual(await inbox(u.rick, 'open'), [], 'nobody else sees them as theirs');
      const everyone = await p.api('GET', '/api/v1/tasks?state=open&limit=200', { key: u.rick.apiKey });
      assert.equal(everyone.body.items.filter((t: { workflow_id: string }) => t.workflow_id === v.workflowId).length, 2);

      assert.equal((await approve(p, u.rita, v.number, v.version, v.contentHash)).status, 200);
      assert.deepEqual(await inbox(u.rita, 'open'), []);
      const [done] = await inbox(u.rita, 'done');
      assert.equal(done.id, ritaTask.id);
      assert.ok(done.closed_at);
      assert.equal((await inbox(u.april, 'open')).length, 1);

      assert.equal((await approve(p, u.april, v.number, v.version, v.contentHash)).status, 200);
      assert.deepEqual(await inbox(u.april, 'open'), []);
      assert.equal((await inbox(u.april, 'done'))[0].id, aprilTask.id);
    });
  });

  describe('the audit trail', () => {
    it('verifies the live audit chain for an admin or QA manager, and not for a reviewer', async () => {
      for (const who of [u.admin, u.qa]) {
        const res = await p.api('GET', '/api/v1/admin/audit/verify', { key: who.apiKey });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.equal(res.body.ok, true, JSON.stringify(res.body));
        assert.ok(res.body.events > 0);
      }
      assertProblem(await p.api('GET', '/api/v1/admin/audit/verify', { key: u.rita.apiKey }), 403, 'forbidden');
    });
  });

  // Last, and on a throwaway database of its own: the run's shared trail is never tampered with.
  describe('tampering with the audit trail', () => {
    let db: Db;
    let databaseUrl: string;
    let api: Awaited<ReturnType<typeof serve>>;
    let adminKey: string;

    before(async () => {
      const url = new URL(testEnv().databaseUrl);
      url.pathname = `/labflow_tamper_${process.pid}_${randomBytes(3).toString('hex')}`;
      databaseUrl = url.toString();
      await ensureDatabase(databaseUrl);
      db = createDb(databaseUrl, 2);
      await migrateLatest(db);
      api = await serve(appOver(db, testEnv().client));
      adminKey = (await createUser(db, { username: 'auditor', printedName: 'Audrey Auditor', email: 'a@lab.test', roles: ['admin'] }))
        .apiKey;
      await createUser(db, { username: 'writer', printedName: 'Will Writer', email: 'w@lab.test', roles: ['author'] });
      for (const title of ['Balance calibration', 'Freezer monitoring']) {
        assert.equal((await api.api('POST', '/api/v1/documents', { key: adminKey, body: { title, docType: 'sop' } })).status, 201);
      }
    });
    after(async () => {
      await api?.close();
      await db?.destroy();
      if (databaseUrl) await dropDatabase(databaseUrl);
    });

    const verify = () => api.api('GET', '/api/v1/admin/audit/verify', { key: adminKey });
    const asSuperuser = (sql: string, bindings: unknown[] = []) =>
      db.transaction(async (trx) => {
        await trx.raw('alter table audit_events disable trigger audit_events_append_only');
        await trx.raw(sql, bindings as never[]);
        await trx.raw('alter table audit_events enable trigger audit_events_append_only');
      });

    it('refuses to change or delete an audit event while the append-only trigger is on', async () => {
      await assert.rejects(db('audit_events').where({ seq: 2 }).update({ actor: 'someone-else' }), /append-only/);
      await assert.rejects(db('audit_events').where({ seq: 2 }).delete(), /append-only/);
    });

    it('answers ok for an untouched chain, then names the first broken seq once an event is altered', async () => {
      const clean = await verify();
      assert.equal(clean.status, 200);
      assert.deepEqual(clean.body, { ok: true, events: 4 });

      await asSuperuser(`update audit_events set details = '{"title": "Nothing to see"}' where seq = 3`);
      const altered = await verify();
      assert.equal(altered.status, 200);
      assert.equal(altered.body.ok, false);
      assert.deepEqual(altered.body.firstBroken, { seq: 3, reason: 'its content does not match its hash' });
      assert.equal(altered.body.events, 2);

      // Re-hashing the altered event hides it from its own check, but the next event no longer links to it.
      await asSuperuser('update audit_events e set hash = audit_event_digest(e.prev_hash, e) where seq = 3');
      const rehashed = await verify();
      assert.deepEqual(rehashed.body.firstBroken, { seq: 4, reason: 'does not link to the event before it' });

      await asSuperuser('delete from audit_events where seq = 2');
      const removed = await verify();
      assert.deepEqual(removed.body.firstBroken, { seq: 3, reason: 'event 2 is missing' });
    });
  });
});
