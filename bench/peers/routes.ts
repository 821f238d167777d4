/**
 * How a connection reaches a server: in cleartext through a forwarder (ticketbooth or stunnel,
 * which does the TLS), with the benchmark process's own Node TLS client (`direct`, which keeps the
 * latest session and offers it on the next connection, as https.Agent does per destination), or
 * as the bare client (`bareTls`): the upstream half of a forwarder, ticket use included.
 */
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, createSecureContext, type ConnectionOptions } from 'node:tls';
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
      const socket = connectTls(tlsOptions(up, up.servername, secureContext, session));
      socket.on('session', (s: Buffer) => (session = s));
      return { socket, ready: 'secureConnect' };
    },
  };
}

/** Tickets kept per destination: ticketbooth's default `cache.ticketsPerDestination`. */
const TICKETS_KEPT = 8;

/**
 * The same upstream handshakes a forwarder makes, and nothing else: one shared context (CA, and
 * `groups` as ticketbooth's `upstream.groups`), name checked, and each ticket offered once, the
 * newest first, as ticketbooth's single-use cache does.
 */
export function bareTls(up: { host: string; port: number; servername: string; ca: string }, groups?: string): Route {
  const tickets: Buffer[] = [];
  const secureContext = createSecureContext({ ca: up.ca, ...(groups ? { ecdhCurve: groups } : {}) });
  return {
    name: 'bare',
    open: () => {
      const socket = connectTls(tlsOptions(up, up.servername, secureContext, tickets.pop()));
      socket.on('session', (s: Buffer) => {
        tickets.push(s);
        if (tickets.length > TICKETS_KEPT) tickets.shift();
      });
      return { socket, ready: 'secureConnect' };
    },
  };
}

function tlsOptions(
  up: { host: string; port: number },
  servername: string,
  secureContext: ConnectionOptions['secureContext'],
  session: Buffer | undefined,
): ConnectionOptions {
  return { host: up.host, port: up.port, servername, secureContext, ...(session ? { session } : {}) };
}
