import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import { msToTs } from '@temporalio/common/lib/time';
import { workflowIds } from '../../common/ids';
import { toProblem } from '../../api/error-handler';
import {
  ensureSearchAttributes,
  searchAttributesProblem,
  UNMAPPED_SEARCH_ATTRIBUTE,
  waitUntilSearchAttributesUsable,
} from '../../workers/search-attributes';
import { createDraft, submit, versionPath } from '../helpers/documents';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { assertProblem, oneStage, refused } from './support';

/**
 * A namespace on which labflow's search attributes were never registered answers a start exactly as a real server
 * does in the seconds after the worker registered them: "Namespace ... has no mapping defined for search attribute".
 */
describe('search attributes the server does not resolve yet', () => {
  const namespace = `labflow-bare-${randomBytes(3).toString('hex')}`;
  let connection: Connection;
  let client: Client;
  let p: Platform;
  let u: Record<'author' | 'rita', TestUser>;

  before(async function () {
    this.timeout(120_000);
    connection = await Connection.connect({ address: testEnv().temporalAddress });
    await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('1 day') });
    // A new namespace reaches the frontend's namespace cache a few seconds after it is registered.
    await waitFor(
      () => connection.workflowService.describeNamespace({ namespace }).then(() => true, () => false),
      `namespace ${namespace} to be known`,
      60_000,
      250,
    );
    client = new Client({ connection, namespace, dataConverter: testEnv().dataConverter });
    p = await startPlatform({ withWorker: false, temporal: { client, nativeConnection: testEnv().nativeConnection } });
    u = await makeUsers({ author: ['author'], rita: ['reviewer'] });
  });
  after(async () => {
    await p?.stop();
    await connection?.close();
  });

  it('the readiness probe reports them unusable, naming the unmapped attribute', async () => {
    const problem = await searchAttributesProblem(connection, namespace);
    assert.ok(problem, 'the probe passed on a namespace without the attributes');
    assert.match(problem, UNMAPPED_SEARCH_ATTRIBUTE);
  });

  it('a submit answers 503 problem+json, starts nothing, and succeeds once the attributes are usable', async function () {
    this.timeout(120_000);
    const { number, version } = await createDraft(p, u.author);
    const workflowId = workflowIds.documentApproval(number, version);
    const res = await refused(() =>
      p.api('POST', `${versionPath(number, version)}/submit`, { key: u.author.apiKey, body: oneStage([u.rita]) }),
    );
    assertProblem(res, 503, 'dependency-unavailable');
    assert.match(res.body.detail, /search attributes/);
    assert.ok(Number(res.headers.get('retry-after')) > 0);
    await assert.rejects(client.workflow.getHandle(workflowId).describe(), WorkflowNotFoundError);

    assert.deepEqual((await ensureSearchAttributes(connection, namespace)).sort(), ['Assignees', 'DueAt', 'EntityId', 'EntityType', 'Stage']);
    await waitUntilSearchAttributesUsable(connection, namespace, { timeoutMs: 90_000 });
    const accepted = await submit(p, u.author, number, version, oneStage([u.rita]));
    assert.equal(accepted.workflowId, workflowId);
    const description = await client.workflow.getHandle(workflowId).describe();
    assert.equal(description.status.name, 'RUNNING');
    await client.workflow.getHandle(workflowId).terminate('test done');
  });

  it('maps the error wherever it sits in the cause chain, and nothing else like it', () => {
    const grpc = Object.assign(new Error('3 INVALID_ARGUMENT: Namespace default has no mapping defined for search attribute EntityType'), {
      code: 3,
    });
    const wrapped = new Error('Failed to start Workflow', { cause: grpc });
    assert.equal(toProblem(wrapped)?.status, 503);
    assert.equal(toProblem(new Error('3 INVALID_ARGUMENT: invalid query'))?.status, undefined);
  });
});
