import { Client, Connection } from '@temporalio/client';
import { databaseUrls, loadConfig } from '../common/config';
import { auditChainFromConfig } from '../db/audit-chain';
import { createDb } from '../db/knex';
import { dataConverterFor, loadPayloadKeys } from '../platform/data-converter';
import { createLogger } from '../platform/logger';
import { apiTemporalConnectionOptions } from '../platform/temporal-connection';
import { createApp } from './app';
import { apiConfig, oidcSettings } from './config';
import { startAuthentication } from './credentials/authentication';
import { createApiServer } from './hardening/tls-server';
import { createEventStreams } from './live/event-streams';
import { oidcResolver } from './oidc';
import { deliverQueuedEmails } from './temporal/notifications';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config, 'api');
  const db = createDb(databaseUrls(config).app, config.DATABASE_POOL_MAX);
  // A lazy connection lets the API start (and answer /readyz with 503) while Temporal is still coming up.
  const connection = Connection.lazy(apiTemporalConnectionOptions(config));
  const keys = loadPayloadKeys(config);
  if (!keys) log.warn('payload encryption is off: no PAYLOAD_KEYS or PAYLOAD_KEYS_FILE');
  if (keys && config.PAYLOAD_ALLOW_CLEAR) log.warn('PAYLOAD_ALLOW_CLEAR is on: unencrypted payloads are accepted');
  const dataConverter = dataConverterFor(keys, { allowClear: config.PAYLOAD_ALLOW_CLEAR === true });
  const temporal = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE, dataConverter });
  const settings = apiConfig(config);
  const oidc = oidcSettings(config);
  const urls = databaseUrls(config);
  const sso = {
    log,
    mailDomain: settings.mailDomain,
    deliverEmails: (key: string, ids: string[]) => deliverQueuedEmails({ temporal, config: settings, log }, key, ids),
  };
  const auth = startAuthentication({ db, temporal, config: settings, log }, urls.app, oidc ? [oidcResolver(db, oidc, sso)] : []);
  // Live updates share the process's one LISTEN connection with the credential notices.
  const streams = createEventStreams({ db, listener: auth.listener, settings: settings.streams, log, recheck: auth.authenticate.recheck });
  const app = createApp({
    db,
    temporal,
    config: settings,
    log,
    authenticate: auth.authenticate,
    streams,
    payloadCodec: dataConverter.payloadCodecs?.[0],
    auditChain: auditChainFromConfig(config),
  });
  const { server, scheme } = createApiServer(app, { certFile: config.TLS_CERT_FILE, keyFile: config.TLS_KEY_FILE });
  server.listen(config.API_PORT, config.API_HOST, () => log.info({ host: config.API_HOST, port: config.API_PORT, scheme }, 'api listening'));
  server.on('error', (err) => {
    log.fatal({ err }, 'api could not listen');
    process.exit(1);
  });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'api stopping');
    // Open event streams would hold the server open: each ends with 'shutting-down', and its client reconnects.
    streams.close();
    server.close(() => {
      void Promise.allSettled([connection.close(), auth.close(), db.destroy()]).then(() => process.exit(0));
    });
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 10_000).unref();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err) => {
  process.stderr.write(`api failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
