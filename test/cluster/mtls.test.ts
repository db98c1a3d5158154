import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import { testEnv } from '../setup/env';
import { testTemporalKind } from '../setup/test-temporal';

/** Whether a client with these settings can start a run on the cluster (and so update and signal one). */
async function canStart(options: ConnectionOptions): Promise<boolean> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ ...options, connectTimeout: 3000 });
    const client = new Client({ connection });
    await client.connection.withDeadline(Date.now() + 5000, () =>
      client.workflow.start('healthCanaryWorkflow', { workflowId: `mtls-probe-${Date.now()}`, taskQueue: 'nobody-polls-this' }),
    );
    return true;
  } catch {
    return false;
  } finally {
    await connection?.close().catch(() => undefined);
  }
}

describe('the cluster frontend takes only labflow certificates (mTLS)', function () {
  before(function () {
    if (testTemporalKind() !== 'cluster') this.skip();
  });

  const env = () => testEnv().temporalEnv;
  const ca = () => readFileSync(env().TEMPORAL_TLS_CA_FILE);
  const base = () => ({ address: env().TEMPORAL_ADDRESS });

  it('refuses plaintext, TLS without a client certificate, and a certificate another CA signed', async () => {
    assert.equal(await canStart(base()), false, 'plaintext');
    assert.equal(await canStart({ ...base(), tls: { serverRootCACertificate: ca(), serverNameOverride: 'localhost' } }), false, 'no client certificate');
    const dir = mkdtempSync(join(tmpdir(), 'labflow-outsider-'));
    try {
      // A self-signed client certificate claiming to be labflow: same subject, not signed by labflow's CA.
      execFileSync('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
        '-keyout', join(dir, 'outsider.key'), '-out', join(dir, 'outsider.pem'), '-subj', '/O=labflow/CN=labflow',
        '-addext', 'extendedKeyUsage=clientAuth',
      ], { stdio: 'ignore' });
      const outsider = { crt: readFileSync(join(dir, 'outsider.pem')), key: readFileSync(join(dir, 'outsider.key')) };
      assert.equal(
        await canStart({ ...base(), tls: { serverRootCACertificate: ca(), serverNameOverride: 'localhost', clientCertPair: outsider } }),
        false,
        'a certificate from another CA',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("starts a run with labflow's client certificate", async () => {
    const labflow = { crt: readFileSync(env().TEMPORAL_TLS_CERT_FILE), key: readFileSync(env().TEMPORAL_TLS_KEY_FILE) };
    assert.equal(await canStart({ ...base(), tls: { serverRootCACertificate: ca(), serverNameOverride: 'localhost', clientCertPair: labflow } }), true);
  });
});
