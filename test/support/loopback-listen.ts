import type { AddressInfo, Server, Socket } from 'node:net';

export interface LoopbackListening {
  host: string;
  port: number;
  /** Destroys every open connection, then closes the server; resolves once it is closed. */
  stop(): Promise<void>;
}

/**
 * Listens on an ephemeral loopback port for a test server. Every TCP connection is tracked, not
 * only those whose TLS handshake finished: a client that gave up mid-handshake (or half-closed,
 * with allowHalfOpen) leaves a socket that would hold `server.close()` forever.
 */
export async function listenOnLoopback(server: Server): Promise<LoopbackListening> {
  const host = '127.0.0.1';
  const open = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen({ host, port: 0 }, resolve));
  return {
    host,
    port: (server.address() as AddressInfo).port,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
