import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import type { Config } from '../../common/config';
import { durationMs } from '../../common/durations';
import { canBind, httpUrl } from './ports';
import { StartError } from './say';
import type { TemporalCluster } from './temporal-cluster';
import { waitForHttpOk } from './wait-http';

export interface TemporalUi {
  /** Where people open it (TEMPORAL_UI_URL with sign-in; the loopback address without). */
  url: string;
  /** Whether it requires sign-in at the identity provider. */
  signIn: boolean;
  process: ChildProcess;
  stop(): Promise<void>;
}

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));

/** The Web UI server's binary in the per-user cache (built by `install-temporal-server.sh --ui`). */
export function temporalUiBinary(): string {
  const cache = process.env.LABFLOW_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? '', '.cache'), 'labflow');
  return join(cache, 'bin', 'temporal-ui-server');
}

/**
 * The UI server's configuration (github.com/temporalio/ui-server's config.yaml) for this cluster: mTLS to the
 * frontend with the UI's own certificate (read-only by temporal-config/server/roles.yaml), write actions off
 * (operators change runs through labflow's API, where roles and signatures are checked), the payload codec at
 * labflow's `<PUBLIC_URL>/codec` with credentials. With TEMPORAL_UI_OIDC_CLIENT_ID and OIDC_ISSUER, sign-in at the
 * lab's identity provider: the UI server then refuses its API to a request without a token the provider signed for
 * that client. Without them there is no sign-in, so it may listen on loopback only.
 */
export function temporalUiSettings(config: Config, temporal: Pick<TemporalCluster, 'address' | 'certDir'>) {
  const port = config.TEMPORAL_UI_PORT;
  const host = config.TEMPORAL_UI_HOST;
  const clientId = config.TEMPORAL_UI_OIDC_CLIENT_ID;
  if (clientId && !config.OIDC_ISSUER) throw new StartError('TEMPORAL_UI_OIDC_CLIENT_ID is set but OIDC_ISSUER is not: the Web UI signs in at OIDC_ISSUER');
  const signIn = Boolean(clientId);
  if (!signIn && !isLoopback(host)) {
    throw new StartError(
      `TEMPORAL_UI_HOST=${host} would open the Web UI without sign-in to the network; set TEMPORAL_UI_OIDC_CLIENT_ID (with OIDC_ISSUER) or keep it on loopback`,
    );
  }
  const loopbackUrl = host === '127.0.0.1' || host === 'localhost' ? `http://localhost:${port}` : httpUrl(host, port);
  const url = signIn ? config.TEMPORAL_UI_URL.replace(/\/+$/, '') : loopbackUrl;
  const codec = `${config.PUBLIC_URL.replace(/\/+$/, '')}/codec`;
  const certs = temporal.certDir;
  const settings = {
    temporalGrpcAddress: temporal.address,
    host,
    port,
    enableUi: true,
    defaultNamespace: config.TEMPORAL_NAMESPACE,
    showTemporalSystemNamespace: false,
    disableWriteActions: true,
    cors: { cookieInsecure: url.startsWith('http://'), allowOrigins: [new URL(url).origin] },
    tls: {
      caFile: join(certs, 'ca.pem'),
      certFile: join(certs, 'ui.pem'),
      keyFile: join(certs, 'ui.key'),
      enableHostVerification: true,
      serverName: config.TEMPORAL_TLS_SERVER_NAME ?? 'localhost',
    },
    codec: { endpoint: codec, includeCredentials: true },
    auth: signIn
      ? {
          enabled: true,
          maxSessionDuration: `${Math.round(durationMs(config.TEMPORAL_UI_MAX_SESSION) / 1000)}s`,
          providers: [
            {
              label: 'labflow',
              type: 'oidc',
              providerUrl: config.OIDC_ISSUER,
              clientId,
              clientSecret: config.TEMPORAL_UI_OIDC_CLIENT_SECRET ?? '',
              scopes: config.TEMPORAL_UI_OIDC_SCOPES.split(/[\s,]+/).filter(Boolean),
              callbackUrl: `${url}/auth/sso/callback`,
            },
          ],
        }
      : { enabled: false },
  };
  return { url, port, host, codec, signIn, settings };
}

/**
 * Starts the Web UI server in front of the cluster (configuration: temporalUiSettings). Its files live under
 * `root` (default `<DATA_DIR>/cluster/ui`; the configuration holds the client secret, so it is mode 0600). Throws
 * when the UI server is not built or cannot start.
 */
export async function startTemporalUi(options: {
  config: Config;
  temporal: Pick<TemporalCluster, 'address' | 'certDir'>;
  say: (line: string) => void;
  root?: string;
}): Promise<TemporalUi> {
  const { config, temporal, say } = options;
  const binary = temporalUiBinary();
  if (!existsSync(binary)) throw new Error(`${binary} is not built (bash scripts/install-temporal-server.sh --ui)`);
  const ui = temporalUiSettings(config, temporal);
  if (!(await canBind(ui.host, ui.port))) throw new Error(`port ${ui.port} (TEMPORAL_UI_PORT) on ${ui.host} is in use`);
  const root = options.root ?? resolve(config.DATA_DIR, 'cluster', 'ui');
  mkdirSync(join(root, 'config'), { recursive: true, mode: 0o700 });
  writeFileSync(join(root, 'config', 'labflow.yaml'), stringify(ui.settings), { mode: 0o600 });
  const child = spawn(binary, ['--root', root, '--config', 'config', '--env', 'labflow', 'start'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.resume();
  child.stderr?.resume();
  let exited = false;
  child.once('exit', () => (exited = true));
  await waitForHttpOk(`${httpUrl(ui.host, ui.port)}/healthz`, { timeoutMs: 60_000, giveUp: () => exited });
  if (exited) throw new Error('the Web UI server exited while starting');
  say(
    ui.signIn
      ? `Web UI: ${ui.url} (listening on ${ui.host}:${ui.port}; sign-in at ${config.OIDC_ISSUER} as client ${config.TEMPORAL_UI_OIDC_CLIENT_ID}; read-only; payloads decoded by ${ui.codec})`
      : `Web UI: ${ui.url} (loopback only: no sign-in configured, see TEMPORAL_UI_OIDC_CLIENT_ID; read-only; payloads decoded by ${ui.codec})`,
  );
  return {
    url: ui.url,
    signIn: ui.signIn,
    process: child,
    stop: () =>
      new Promise<void>((done) => {
        if (exited) return done();
        child.once('exit', () => done());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}
