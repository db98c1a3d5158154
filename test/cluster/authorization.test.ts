import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { Client, Connection, ScheduleOverlapPolicy } from '@temporalio/client';
import {
  certificateFromClusterCa,
  clusterConnection,
  issuedCertificate,
  type CertificatePair,
} from '../helpers/cluster-certificates';
import { waitFor } from '../helpers/wait';
import { testTemporalKind } from '../setup/test-temporal';

/**
 * Roles by certificate subject on labflow's Temporal server (temporal-server/, temporal-config/server/roles.yaml):
 * labflow's certificate runs everything on its namespace, the Web UI server's only reads, a certificate the same CA
 * signed for anyone else gets nothing, and the server's own system worker still fires schedules.
 */
const NAMESPACE = 'default';
// Runs nobody polls: they stay open until terminated, and no workflow code of labflow runs for them.
const TASK_QUEUE = `authorization-probe-${randomUUID()}`;

const errorCode = async (call: () => Promise<unknown>): Promise<number | string> => {
  try {
    await call();
    return 'allowed';
  } catch (err) {
    return (err as { code?: number }).code ?? `no gRPC code: ${(err as Error).message}`;
  }
};

describe("the cluster's authorizer gives each certificate its roles", function () {
  this.timeout(180_000);
  const connections: Connection[] = [];
  const connectAs = async (pair: CertificatePair) => {
    const connection = await Connection.connect(clusterConnection(pair));
    connections.push(connection);
    return connection;
  };

  before(function () {
    if (testTemporalKind() !== 'cluster') this.skip();
  });
  after(async () => {
    await Promise.all(connections.map((c) => c.close().catch(() => undefined)));
  });

  const startProbe = async (client: Client) => {
    const workflowId = `authorization-probe-${randomUUID()}`;
    await client.workflow.start('healthCanaryWorkflow', { workflowId, taskQueue: TASK_QUEUE });
    return workflowId;
  };

  it("lets labflow's certificate start, signal, describe and terminate a run", async () => {
    const client = new Client({ connection: await connectAs(issuedCertificate('labflow')), namespace: NAMESPACE });
    const workflowId = await startProbe(client);
    const handle = client.workflow.getHandle(workflowId);
    await handle.signal('probe');
    const history = await handle.fetchHistory();
    assert.ok(
      history.events?.some((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'probe'),
      'the signal is in the run history',
    );
    await handle.terminate('authorization test');
    assert.equal((await handle.describe()).status.name, 'TERMINATED');
  });

  it("lets the Web UI server's certificate read, and refuses it every write with PermissionDenied", async () => {
    const labflow = new Client({ connection: await connectAs(issuedCertificate('labflow')), namespace: NAMESPACE });
    const workflowId = await startProbe(labflow);
    try {
      const ui = await connectAs(issuedCertificate('ui'));
      const service = ui.workflowService;
      const execution = { workflowId };

      // Reads: the namespace list (a cluster-wide read), the run's description, a visibility list.
      const namespaces = await service.listNamespaces({});
      assert.ok(namespaces.namespaces.some((n) => n.namespaceInfo?.name === NAMESPACE));
      const described = await service.describeWorkflowExecution({ namespace: NAMESPACE, execution });
      assert.equal(described.workflowExecutionInfo?.execution?.workflowId, workflowId);
      await waitFor(
        async () => {
          const listed = await service.listWorkflowExecutions({ namespace: NAMESPACE, query: `WorkflowId = "${workflowId}"` });
          return listed.executions.length === 1;
        },
        "the run in the Web UI certificate's visibility list",
        60_000,
        500,
      );

      // Writes: each refused before it reaches the run.
      const refused = {
        start: await errorCode(() =>
          service.startWorkflowExecution({
            namespace: NAMESPACE,
            workflowId: `authorization-ui-start-${randomUUID()}`,
            workflowType: { name: 'healthCanaryWorkflow' },
            taskQueue: { name: TASK_QUEUE },
            requestId: randomUUID(),
          }),
        ),
        signal: await errorCode(() => service.signalWorkflowExecution({ namespace: NAMESPACE, workflowExecution: execution, signalName: 'probe', requestId: randomUUID() })),
        update: await errorCode(() =>
          service.updateWorkflowExecution({
            namespace: NAMESPACE,
            workflowExecution: execution,
            request: { meta: { updateId: randomUUID() }, input: { name: 'probe' } },
          }),
        ),
        terminate: await errorCode(() => service.terminateWorkflowExecution({ namespace: NAMESPACE, workflowExecution: execution, reason: 'from the UI' })),
      };
      assert.deepEqual(refused, {
        start: status.PERMISSION_DENIED,
        signal: status.PERMISSION_DENIED,
        update: status.PERMISSION_DENIED,
        terminate: status.PERMISSION_DENIED,
      });
      const history = await labflow.workflow.getHandle(workflowId).fetchHistory();
      assert.ok(!history.events?.some((e) => e.workflowExecutionSignaledEventAttributes), 'no signal reached the run');
      assert.equal((await labflow.workflow.getHandle(workflowId).describe()).status.name, 'RUNNING');
    } finally {
      await labflow.workflow.getHandle(workflowId).terminate('authorization test');
    }
  });

  it('refuses a certificate the same CA signed for a subject the roles file does not name, even for reads', async () => {
    const stranger = await connectAs(await certificateFromClusterCa('/O=labflow/CN=someone-else'));
    // The handshake succeeds (the CA signed it) and the health check answers, so what refuses is the authorizer.
    await stranger.workflowService.getSystemInfo({});
    assert.deepEqual(
      {
        describeNamespace: await errorCode(() => stranger.workflowService.describeNamespace({ namespace: NAMESPACE })),
        list: await errorCode(() => stranger.workflowService.listWorkflowExecutions({ namespace: NAMESPACE, query: '' })),
        listNamespaces: await errorCode(() => stranger.workflowService.listNamespaces({})),
      },
      { describeNamespace: status.PERMISSION_DENIED, list: status.PERMISSION_DENIED, listNamespaces: status.PERMISSION_DENIED },
    );
    // A known common name under another organization is a stranger too.
    const impostor = await connectAs(await certificateFromClusterCa('/O=elsewhere/CN=labflow'));
    assert.equal(await errorCode(() => impostor.workflowService.describeNamespace({ namespace: NAMESPACE })), status.PERMISSION_DENIED);
  });

  it("fires a schedule: the server's system worker has its role", async () => {
    const client = new Client({ connection: await connectAs(issuedCertificate('labflow')), namespace: NAMESPACE });
    const scheduleId = `authorization-schedule-${randomUUID()}`;
    const schedule = await client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every: '1s' }] },
      policies: { overlap: ScheduleOverlapPolicy.ALLOW_ALL },
      action: { type: 'startWorkflow', workflowType: 'healthCanaryWorkflow', workflowId: `${scheduleId}-run`, taskQueue: TASK_QUEUE },
    });
    const started: string[] = [];
    try {
      await waitFor(
        async () => {
          const { info } = await schedule.describe();
          started.splice(0, started.length, ...info.recentActions.map((a) => a.action.workflow.workflowId));
          return started.length > 0;
        },
        'a run the schedule started',
        120_000,
        500,
      );
      const run = await client.workflow.getHandle(started[0]).describe();
      assert.equal(run.type, 'healthCanaryWorkflow');
    } finally {
      await schedule.delete();
      for await (const run of client.workflow.list({ query: `WorkflowId STARTS_WITH "${scheduleId}" AND ExecutionStatus = "Running"` })) started.push(run.workflowId);
      for (const workflowId of new Set(started)) await client.workflow.getHandle(workflowId).terminate('authorization test').catch(() => undefined);
    }
  });
});
