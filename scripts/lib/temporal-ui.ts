import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../../common/config';
import { canBind } from './ports';
import type { TemporalCluster } from './temporal-cluster';
import { waitForHttpOk } from './wait-http';

export interface TemporalUi {
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * The Web UI server (github.com/temporalio/ui-server, built by `install-temporal-server.sh --ui`) in front of the
 * cluster: on loopback only, mTLS to the frontend with its own certificate, write actions off (operators change
 * runs through labflow's API, where roles and signatures are checked), and the payload codec at labflow's
 * `<PUBLIC_URL>/codec` with credentials, so the browser's labflow session decodes payloads without any toggle.
 * Throws when the UI server is not built.
 */
export async function startTemporalUi(options: { config: Config; temporal: TemporalCluster; say: (line: string) => void }): Promise<TemporalUi> {
  const { config, temporal, say } = options;
  const cache = process.env.LABFLOW_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? '', '.cache'), 'labflow');
  const binary = join(cache, 'bin', 'temporal-ui-server');
  if (!existsSync(binary)) throw new Error(`${binary} is not built (bash scripts/install-temporal-server.sh --ui)`);
  const port = config.TEMPORAL_UI_PORT;
  if (!(await canBind('127.0.0.1', port))) throw new Error(`port ${port} (TEMPORAL_UI_PORT) is in use`);
  const root = resolve(config.DATA_DIR, 'cluster', 'ui');
  mkdirSync(join(root, 'config'), { recursive: true });
  const certs = temporal.certDir;
  const url = `http://localhost:${port}`;
  writeFileSync(
    join(root, 'config', 'labflow.yaml'),
    [
      `temporalGrpcAddress: ${temporal.address}`,
      'host: 127.0.0.1',
      `port: ${port}`,
      'enableUi: true',
      'defaultNamespace: default',
      'showTemporalSystemNamespace: false',
      'disableWriteActions: true',
      'cors:',
      '  cookieInsecure: true',
      '  allowOrigins:',
      `    - ${url}`,
      'tls:',
      `  caFile: ${certs}/ca.pem`,
      `  certFile: ${certs}/ui.pem`,
      `  keyFile: ${certs}/ui.key`,
      '  enableHostVerification: true',
      '  serverName: localhost',
      'codec:',
      `  endpoint: ${config.PUBLIC_URL.replace(/\/+$/, '')}/codec`,
      '  includeCredentials: true',
      'auth:',
      '  enabled: false',
      '',
    ].join('\n'),
  );
  const child = spawn(binary, ['--root', root, '--config', 'config', '--env', 'labflow', 'start'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.resume();
  child.stderr?.resume();
  let exited = false;
  child.once('exit', () => (exited = true));
  await waitForHttpOk(`${url}/`, { timeoutMs: 60_000, giveUp: () => exited });
  if (exited) throw new Error('the Web UI server exited while starting');
  say(`Web UI: ${url} (write actions off; payloads decoded by ${config.PUBLIC_URL.replace(/\/+$/, '')}/codec)`);
  return {
    url,
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
