import { connect, createServer } from 'node:net';
import { StartError } from './say';

export interface HostPort {
  host: string;
  port: number;
}

/** Parses the `host:port` and `[v6]:port` forms that TEMPORAL_ADDRESS takes. */
export function parseHostPort(address: string): HostPort {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address.trim());
  if (!match) throw new StartError(`expected host:port, got "${address}"`);
  return { host: match[1] ?? match[2], port: Number(match[3]) };
}

/** Where a client on this machine reaches a server that listens on `host` (a wildcard is not an address to dial). */
export function dialHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

export function httpUrl(host: string, port: number): string {
  const dial = dialHost(host);
  return `http://${dial.includes(':') ? `[${dial}]` : dial}:${port}`;
}

/** True when something accepts TCP connections on host:port within the timeout. */
export function isAccepting(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const settle = (accepting: boolean) => {
      socket.destroy();
      resolve(accepting);
    };
    socket.setTimeout(timeoutMs, () => settle(false));
    socket.once('connect', () => settle(true));
    socket.once('error', () => settle(false));
  });
}

/**
 * True when host:port could be bound right now: the very test the server about to start there will face, so a
 * clash is reported before anything has been started rather than as a child's crash.
 */
export function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE' || err.code === 'EACCES') resolve(false);
      else reject(new StartError(`cannot listen on ${host}:${port}: ${err.message}`));
    });
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
