import { resolve } from 'node:path';
import { Connection, type ConnectionOptions } from '@temporalio/client';
import { loadConfig, type Config } from '../../common/config';
import { temporalTls } from '../../platform/temporal-connection';
import { startDevTemporal, type DevTemporal } from './dev-temporal';
import { canBind, isAccepting, parseHostPort } from './ports';
import { say, StartError } from './say';

export interface TemporalEndpoint {
  address: string;
  uiUrl: string;
  /** Set when this start runs the dev server and so must stop it. */
  devServer: DevTemporal | null;
}

/** Hosts a dev server can be started on, and the address it then binds. */
const LOCAL_BIND: Record<string, string> = { '127.0.0.1': '127.0.0.1', localhost: '127.0.0.1', '::1': '127.0.0.1', '0.0.0.0': '0.0.0.0' };

/**
 * TEMPORAL_DEV_SERVER=auto uses a Temporal server that already answers on TEMPORAL_ADDRESS, else starts the dev
 * server there; true always starts it (and so fails if the port is taken); false uses TEMPORAL_ADDRESS as it is.
 */
export async function provideTemporal(config: Config): Promise<TemporalEndpoint> {
  const address = config.TEMPORAL_ADDRESS;
  const mode = config.TEMPORAL_DEV_SERVER;
  const { host, port } = parseHostPort(address);

  if (mode === false) {
    if (!(await temporalAnswers(address, temporalTls(config)))) {
      throw new StartError(`Temporal does not answer at ${address} (TEMPORAL_DEV_SERVER=false); start it, or set TEMPORAL_DEV_SERVER=auto`);
    }
    say(`Temporal: using the server at ${address}; Web UI: ${config.TEMPORAL_UI_URL}`);
    return { address, uiUrl: config.TEMPORAL_UI_URL, devServer: null };
  }

  if (await isAccepting(host, port)) {
    if (mode === 'auto' && (await temporalAnswers(address))) {
      say(`Temporal: a server already answers at ${address}; using it. Web UI: ${config.TEMPORAL_UI_URL}`);
      return { address, uiUrl: config.TEMPORAL_UI_URL, devServer: null };
    }
    throw new StartError(
      mode === 'auto'
        ? `${address} is in use by something that is not a Temporal server; free the port or change TEMPORAL_ADDRESS`
        : `TEMPORAL_DEV_SERVER=true but ${address} is already in use (another npm start?); stop that, or set TEMPORAL_DEV_SERVER=auto to use it`,
    );
  }

  const ip = LOCAL_BIND[host];
  if (!ip) {
    throw new StartError(
      `nothing answers at TEMPORAL_ADDRESS=${address}, and a dev server can only be started on this machine; start that server or set TEMPORAL_ADDRESS=127.0.0.1:${port}`,
    );
  }
  const uiPort = config.TEMPORAL_UI_PORT;
  if (!(await canBind(ip, uiPort))) {
    throw new StartError(`the Temporal Web UI port ${uiPort} is in use (another npm start?); free it or set TEMPORAL_UI_PORT`);
  }
  const dbFilename = resolve(config.DATA_DIR, 'temporal.db');
  say(`Temporal: starting the dev server on ${ip}:${port} (history kept in ${dbFilename})`);
  // While it shuts down, the dev server's internal clients warn about the very connections it is closing: only its
  // errors are worth showing then.
  let stopping = false;
  const devServer = await startDevTemporal({
    ip,
    port,
    uiPort,
    dbFilename,
    // npm start always encrypts payloads (scripts/lib/payload-keys.ts), so the UI always needs the codec.
    uiCodecEndpoint: `${config.PUBLIC_URL.replace(/\/+$/, '')}/codec`,
    logLevel: 'warn',
    onOutput: (line) => {
      if (!stopping || /level=ERROR/.test(line)) console.log(`[temporal] ${line}`);
    },
  });
  const uiUrl = webUiUrl(config, devServer);
  say(`Temporal: dev server ready at ${devServer.address}; Web UI: ${uiUrl}`);
  return {
    address: ip === '0.0.0.0' ? `127.0.0.1:${port}` : devServer.address,
    uiUrl,
    devServer: {
      ...devServer,
      stop: () => {
        stopping = true;
        return devServer.stop();
      },
    },
  };
}

/** The dev server's own UI address, unless the user set TEMPORAL_UI_URL (e.g. for a proxy in front of it). */
function webUiUrl(config: Config, devServer: DevTemporal): string {
  const userSetIt = config.TEMPORAL_UI_URL !== loadConfig({}).TEMPORAL_UI_URL;
  return userSetIt || !devServer.uiUrl ? config.TEMPORAL_UI_URL : devServer.uiUrl;
}

async function temporalAnswers(address: string, tls?: ConnectionOptions['tls']): Promise<boolean> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address, connectTimeout: 2000, ...(tls ? { tls } : {}) });
    const client = connection;
    await client.withDeadline(Date.now() + 3000, () => client.workflowService.getSystemInfo({}));
    return true;
  } catch {
    return false;
  } finally {
    await connection?.close().catch(() => undefined);
  }
}
