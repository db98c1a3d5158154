import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';

const TLS_PARAMS = ['sslmode', 'sslrootcert', 'sslcert', 'sslkey'];

/**
 * The connection string without its TLS parameters, and the TLS options they mean with libpq's semantics (the
 * ones pg_dump and psql apply to the same URL): `require` (and `prefer`) encrypt and verify the server only when a
 * root certificate is given, `verify-ca` checks the chain, `verify-full` the chain and the host name, `disable`
 * and no `sslmode` connect in clear. node-postgres alone would verify for every mode, so the two would disagree.
 */
export function postgresConnection(databaseUrl: string): { connectionString: string; ssl?: false | ConnectionOptions } {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    return { connectionString: databaseUrl };
  }
  const params = url.searchParams;
  if (!TLS_PARAMS.some((p) => params.has(p))) return { connectionString: databaseUrl };
  const mode = params.get('sslmode') ?? (params.has('sslrootcert') ? 'verify-full' : 'prefer');
  const read = (param: string) => {
    const file = params.get(param);
    return file ? readFileSync(file, 'utf8') : undefined;
  };
  const ca = read('sslrootcert');
  const clientCert = { cert: read('sslcert'), key: read('sslkey') };
  for (const p of TLS_PARAMS) params.delete(p);
  const connectionString = url.toString();
  switch (mode) {
    case 'disable':
      return { connectionString, ssl: false };
    case 'allow':
    case 'prefer':
    case 'require':
      return { connectionString, ssl: { ...clientCert, ca, rejectUnauthorized: ca !== undefined, checkServerIdentity: () => undefined } };
    case 'verify-ca':
      return { connectionString, ssl: { ...clientCert, ca, rejectUnauthorized: true, checkServerIdentity: () => undefined } };
    case 'verify-full':
      return { connectionString, ssl: { ...clientCert, ca, rejectUnauthorized: true } };
    default:
      throw new Error(`sslmode ${mode} is not one of disable, allow, prefer, require, verify-ca, verify-full`);
  }
}
