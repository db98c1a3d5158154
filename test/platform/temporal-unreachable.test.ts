import assert from 'node:assert/strict';
import { Client, Connection } from '@temporalio/client';
import { startDevTemporal, type DevTemporal } from '../../scripts/lib/dev-temporal';
import { freePort } from '../../scripts/lib/free-port';
import { apiTemporalConnectionOptions } from '../../platform/temporal-connection';
import { oneStage } from '../api/support';
import { createDraft, getVersion, versionPath } from '../helpers/documents';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';

/**
 * The API connected, as in production, to a Temporal frontend that is not there: a person's request that needs
 * Temporal is answered 503 problem+json with Retry-After (the client's short retries run out), writes nothing, and
 * the same request succeeds once the frontend answers, with no restart of the API.
 */
describe('the API while the Temporal frontend is unreachable', () => {
  let p: Platform;
  let connection: Connection;
  let server: DevTemporal | undefined;
  let port: number;
  let u: { author: TestUser; reviewer: TestUser; ivan: TestUser };

  before(async () => {
    port = await freePort('127.0.0.1');
    connection = Connection.lazy(apiTemporalConnectionOptions({ TEMPORAL_ADDRESS: `127.0.0.1:${port}` }));
    const client = new Client({ connection, dataConverter: testEnv().dataConverter });
    p = await startPlatform({ withWorker: false, temporal: { client, nativeConnection: testEnv().nativeConnection } });
    u = await makeUsers({ author: ['author'], reviewer: ['reviewer'], ivan: ['it_operator'] });
  });
  after(async () => {
    await p.stop();
    await connection.close();
    await server?.stop();
  });

  it('answers 503 with Retry-After, leaves the draft a draft, and submits it once Temporal is back', async () => {
    const draft = await createDraft(p, u.author);
    const path = `${versionPath(draft.number, draft.version)}/submit`;
    const refused = await p.api('POST', path, { key: u.author.apiKey, body: oneStage([u.reviewer]) });
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.match(refused.headers.get('content-type') ?? '', /application\/problem\+json/);
    assert.equal(refused.body.type, 'urn:labflow:problem:dependency-unavailable');
    assert.ok(Number(refused.headers.get('retry-after')) > 0, 'Retry-After is set');

    const still = await getVersion(p, u.author.apiKey, draft.number, draft.version);
    assert.equal(still.state, 'draft');
    assert.equal(still.live, false, 'read from the record while Temporal is away');
    assert.equal(still.workflowId ?? null, null, 'no run is recorded for the version');

    const ready = await p.api('GET', '/readyz');
    assert.equal(ready.status, 503);
    assert.match(ready.body.checks.temporal, /^down/);

    server = await startDevTemporal({ port, logLevel: 'error' });
    await waitFor(async () => ((await p.api('GET', '/readyz')).status === 200 ? true : null), 'the API to find Temporal again');
    const submitted = await p.api('POST', path, { key: u.author.apiKey, body: oneStage([u.reviewer]) });
    assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
    const described = await connection.workflowService.describeWorkflowExecution({
      namespace: 'default',
      execution: { workflowId: submitted.body.workflowId },
    });
    assert.equal(described.workflowExecutionInfo?.type?.name, 'documentApprovalWorkflow');
  });

  it('answers 503 to an operator reading a run while Temporal is away, 404 once it answers and holds no such run', async () => {
    await server?.stop();
    server = undefined;
    const away = await p.api('GET', '/api/v1/workflows/document-approval:NOPE-0001:v1', { key: u.ivan.apiKey });
    assert.equal(away.status, 503, JSON.stringify(away.body));
    server = await startDevTemporal({ port, logLevel: 'error' });
    const back = await waitFor(async () => {
      const res = await p.api('GET', '/api/v1/workflows/document-approval:NOPE-0001:v1', { key: u.ivan.apiKey });
      return res.status === 503 ? null : res;
    }, 'the API to find Temporal again');
    assert.equal(back.status, 404, JSON.stringify(back.body));
  });
});
