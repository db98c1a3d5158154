import { connect, createServer, type Socket } from 'node:net';

export interface TcpForwarder {
  /** host:port the forwarder listens on. */
  address: string;
  host: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Listens on `host` (a free port) and pipes every connection to `target` (host:port): how a process in a network
 * namespace of its own reaches a service that listens on the host's loopback only. Bytes pass through untouched (TLS
 * stays end to end).
 */
export async function startTcpForwarder(host: string, target: string): Promise<TcpForwarder> {
  const [targetHost, targetPort] = splitHostPort(target);
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  const server = createServer((inbound) => {
    const outbound = connect({ host: targetHost, port: targetPort });
    track(inbound);
    track(outbound);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    const end = () => {
      inbound.destroy();
      outbound.destroy();
    };
    inbound.once('error', end).once('close', end);
    outbound.once('error', end).once('close', end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as { port: number };
  return {
    address: `${host}:${port}`,
    host,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function splitHostPort(address: string): [string, number] {
  const at = address.lastIndexOf(':');
  return [address.slice(0, at), Number(address.slice(at + 1))];
}
