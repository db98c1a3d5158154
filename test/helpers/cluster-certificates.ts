import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ConnectionOptions } from '@temporalio/client';
import { testEnv } from '../setup/env';

/** A client certificate and its key (PEM), as Connection.connect takes them. */
export interface CertificatePair {
  crt: Buffer;
  key: Buffer;
}

const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });

/** Runs `make` with a scratch directory that is removed afterwards. */
async function inScratch<T>(make: (dir: string) => T): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'labflow-cert-'));
  try {
    return make(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The directory of the cluster's certificates (make-certs.sh's CA and the certificates it issued). */
export const clusterCertDir = (): string => dirname(testEnv().temporalEnv.TEMPORAL_TLS_CA_FILE);

/** One of the certificates make-certs.sh issued: 'labflow', 'ui', 'system-worker'. */
export function issuedCertificate(name: string): CertificatePair {
  return { crt: readFileSync(join(clusterCertDir(), `${name}.pem`)), key: readFileSync(join(clusterCertDir(), `${name}.key`)) };
}

/** A client certificate with this subject (openssl form, "/O=labflow/CN=someone") signed by the cluster's own CA. */
export function certificateFromClusterCa(subject: string): Promise<CertificatePair> {
  return inScratch((dir) => {
    const ca = clusterCertDir();
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'c.key'), '-out', join(dir, 'c.csr'), '-subj', subject]);
    writeFileSync(join(dir, 'c.ext'), 'basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
    openssl([
      'x509', '-req', '-in', join(dir, 'c.csr'), '-CA', join(ca, 'ca.pem'), '-CAkey', join(ca, 'ca.key'),
      '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '2', '-sha256', '-extfile', join(dir, 'c.ext'), '-out', join(dir, 'c.pem'),
    ]);
    return { crt: readFileSync(join(dir, 'c.pem')), key: readFileSync(join(dir, 'c.key')) };
  });
}

/** A self-signed client certificate with this subject: from a CA the cluster does not trust. */
export function certificateFromAnotherCa(subject: string): Promise<CertificatePair> {
  return inScratch((dir) => {
    openssl([
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
      '-keyout', join(dir, 'c.key'), '-out', join(dir, 'c.pem'), '-subj', subject, '-addext', 'extendedKeyUsage=clientAuth',
    ]);
    return { crt: readFileSync(join(dir, 'c.pem')), key: readFileSync(join(dir, 'c.key')) };
  });
}

/** Connection options for the cluster's frontend presenting this client certificate (or none). */
export function clusterConnection(pair?: CertificatePair): ConnectionOptions {
  const env = testEnv().temporalEnv;
  return {
    address: env.TEMPORAL_ADDRESS,
    tls: { serverRootCACertificate: readFileSync(env.TEMPORAL_TLS_CA_FILE), serverNameOverride: env.TEMPORAL_TLS_SERVER_NAME, clientCertPair: pair },
  };
}
