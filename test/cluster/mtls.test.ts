import assert from 'node:assert/strict';
import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import { certificateFromAnotherCa, clusterConnection, issuedCertificate } from '../helpers/cluster-certificates';
import { testEnv } from '../setup/env';
import { testTemporalKind } from '../setup/test-temporal';

/**
 * Whether a client with these settings gets past the TLS handshake: GetSystemInfo is answered to any client the
 * handshake accepted, whatever its roles (test/cluster/authorization.test.ts tests those).
 */
async function handshakeAccepted(options: ConnectionOptions): Promise<boolean> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ ...options, connectTimeout: 3000 });
    await connection.withDeadline(Date.now() + 5000, () => connection!.workflowService.getSystemInfo({}));
    return true;
  } catch {
    return false;
  } finally {
    await connection?.close().catch(() => undefined);
  }
}

describe('the cluster frontend takes only certificates its CA signed (mTLS)', function () {
  before(function () {
    if (testTemporalKind() !== 'cluster') this.skip();
  });

  it('refuses plaintext, TLS without a client certificate, and a certificate another CA signed, at the handshake', async () => {
    assert.equal(await handshakeAccepted({ address: testEnv().temporalEnv.TEMPORAL_ADDRESS }), false, 'plaintext');
    assert.equal(await handshakeAccepted(clusterConnection()), false, 'no client certificate');
    // A self-signed client certificate claiming to be labflow: same subject, not signed by labflow's CA.
    const outsider = await certificateFromAnotherCa('/O=labflow/CN=labflow');
    assert.equal(await handshakeAccepted(clusterConnection(outsider)), false, 'a certificate from another CA');
  });

  it("starts a run with labflow's client certificate", async () => {
    const connection = await Connection.connect(clusterConnection(issuedCertificate('labflow')));
    try {
      const handle = await new Client({ connection }).workflow.start('healthCanaryWorkflow', {
        workflowId: `mtls-probe-${Date.now()}`,
        taskQueue: 'nobody-polls-this',
      });
      await handle.terminate('mtls test');
    } finally {
      await connection.close();
    }
  });
});
