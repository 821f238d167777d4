import { createServer } from 'node:tls';
import type { CertPair } from '../test/support/certs.js';
import { listenOnLoopback, type LoopbackListening } from '../test/support/loopback-listen.js';

/** A TLS server that sends back every byte it gets and ends when the client ends: the tunnel's upstream in load. */
export async function startTlsEcho(cert: CertPair): Promise<LoopbackListening & { connections: () => number }> {
  let connections = 0;
  const server = createServer({ cert: cert.cert, key: cert.key, allowHalfOpen: true }, (socket) => {
    connections++;
    socket.on('error', () => socket.destroy());
    socket.pipe(socket);
  });
  const l = await listenOnLoopback(server);
  return { ...l, connections: () => connections };
}
