import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type Koa from 'koa';

/**
 * HTTPS when TLS_CERT_FILE and TLS_KEY_FILE are both set (a PEM chain and its key), plain HTTP when neither is;
 * one without the other is a configuration error, not a silent fall-back to clear text.
 */
export function createApiServer(app: Koa, tls: { certFile?: string; keyFile?: string }): { server: Server; scheme: 'http' | 'https' } {
  if (!tls.certFile && !tls.keyFile) return { server: createHttpServer(app.callback()), scheme: 'http' };
  if (!tls.certFile || !tls.keyFile) throw new Error('TLS needs both TLS_CERT_FILE and TLS_KEY_FILE');
  const server = createHttpsServer({ cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile), minVersion: 'TLSv1.2' }, app.callback());
  return { server, scheme: 'https' };
}
