import { readFileSync } from 'node:fs';
import { defaultGrpcRetryOptions, makeGrpcRetryInterceptor, type ConnectionOptions } from '@temporalio/client';
import type { Config } from '../common/config';

export type TemporalTlsSettings = Pick<
  Config,
  'TEMPORAL_TLS_CA_FILE' | 'TEMPORAL_TLS_CERT_FILE' | 'TEMPORAL_TLS_KEY_FILE' | 'TEMPORAL_TLS_SERVER_NAME'
>;

export class TemporalTlsError extends Error {}

function read(file: string, setting: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new TemporalTlsError(`${setting}=${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/**
 * The TLS part of a connection to the Temporal frontend, or undefined for plaintext (the dev server). A client
 * certificate and its key go together; the CA pins the server's issuer (without it the system roots are used).
 * Certificates are read when called, so a process restart picks up rotated files.
 */
export function temporalTls(settings: TemporalTlsSettings): ConnectionOptions['tls'] {
  const { TEMPORAL_TLS_CA_FILE: ca, TEMPORAL_TLS_CERT_FILE: cert, TEMPORAL_TLS_KEY_FILE: key, TEMPORAL_TLS_SERVER_NAME: serverName } = settings;
  if (Boolean(cert) !== Boolean(key)) {
    throw new TemporalTlsError('TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE go together: set both or neither');
  }
  if (!ca && !cert) {
    if (serverName) throw new TemporalTlsError('TEMPORAL_TLS_SERVER_NAME is set but TLS is off: set TEMPORAL_TLS_CA_FILE and/or a client certificate');
    return undefined;
  }
  return {
    ...(ca ? { serverRootCACertificate: read(ca, 'TEMPORAL_TLS_CA_FILE') } : {}),
    ...(cert && key
      ? { clientCertPair: { crt: read(cert, 'TEMPORAL_TLS_CERT_FILE'), key: read(key, 'TEMPORAL_TLS_KEY_FILE') } }
      : {}),
    ...(serverName ? { serverNameOverride: serverName } : {}),
  };
}

/** Address and TLS for Connection.connect / Connection.lazy / NativeConnection.connect (same shape for both). */
export function temporalConnectionOptions(config: Pick<Config, 'TEMPORAL_ADDRESS'> & TemporalTlsSettings): {
  address: string;
  tls?: ConnectionOptions['tls'];
} {
  const tls = temporalTls(config);
  return { address: config.TEMPORAL_ADDRESS, ...(tls ? { tls } : {}) };
}

/**
 * How hard the API retries a Temporal call that found the frontend unavailable before it answers 503: four attempts,
 * 100 ms doubling to at most 1 s apart (about 1.5 s in all), where the client's default keeps trying for about 20 s
 * while the person waits. A worker keeps the default: it has no one waiting and should ride out a restart.
 */
export const API_TEMPORAL_RETRY = { maxAttempts: 4, factor: 2, maxJitter: 0.2, initialIntervalMs: () => 100, maxIntervalMs: () => 1000 };

/** The API's connection options: the worker's, with retries short enough that a person gets a 503 in seconds. */
export function apiTemporalConnectionOptions(
  config: Pick<Config, 'TEMPORAL_ADDRESS'> & TemporalTlsSettings,
): ReturnType<typeof temporalConnectionOptions> & { interceptors: NonNullable<ConnectionOptions['interceptors']> } {
  return { ...temporalConnectionOptions(config), interceptors: [makeGrpcRetryInterceptor(defaultGrpcRetryOptions(API_TEMPORAL_RETRY))] };
}
