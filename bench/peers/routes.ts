/**
 * How the benchmark process reaches a server: in cleartext through a forwarder (ticketbooth or
 * stunnel, which does the TLS), or with its own Node TLS client (`direct`, which keeps the latest
 * session and offers it on the next connection, as https.Agent does per destination).
 */
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, createSecureContext } from 'node:tls';
import type { ContenderName, Forwarder, Upstream } from './contenders.js';

export interface Route {
  name: ContenderName;
  /** The process doing the TLS, to charge CPU to (none for direct: that is this process). */
  pid?: number;
  /** A new connection, and the event after which the application may write. */
  open(): { socket: Socket; ready: 'connect' | 'secureConnect' };
}

export function viaForwarder(f: Forwarder): Route {
  return { name: f.name, pid: f.pid, open: () => ({ socket: connectTcp({ host: f.host, port: f.port }), ready: 'connect' }) };
}

export function direct(up: Upstream): Route {
  let session: Buffer | undefined;
  // One context for every connection, as a long-lived client (and ticketbooth) keeps: no CA parse per connection.
  const secureContext = createSecureContext({ ca: up.cert.cert });
  return {
    name: 'direct',
    open: () => {
      const socket = connectTls({
        host: up.host,
        port: up.port,
        servername: up.servername,
        secureContext,
        ...(session ? { session } : {}),
      });
      socket.on('session', (s: Buffer) => (session = s));
      return { socket, ready: 'secureConnect' };
    },
  };
}
