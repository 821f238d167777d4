import type { Socket } from 'node:net';
import { dialStarttls } from '../../upstream/smtp-client/dial-starttls.js';
import { dialTls, ticketsSettled, type DialContext, type UpstreamTls } from '../../upstream/tls-dialer.js';
import type { TlsTarget } from '../../upstream/tls-target.js';
import { oneLine } from '../../util/text.js';
import { forward } from './forward.js';
import { UpstreamReader } from './upstream-reader.js';

export interface TunnelOptions {
  target: TlsTarget;
  starttls?: 'smtp';
  /** The name in ticketbooth's own EHLO before STARTTLS. */
  heloName: string;
  /** Timeout for connect, greeting, EHLO, STARTTLS and handshake. */
  setupTimeoutMs: number;
  /** Close a session with no traffic either way for this long; 0: never. */
  idleTimeoutMs: number;
  dial: DialContext;
}

/**
 * One client: plaintext in, TLS out. With STARTTLS, ticketbooth does greeting/EHLO/STARTTLS
 * itself, then hands the client the server's greeting; the client's own EHLO travels inside TLS.
 * A failure before the relay starts gives an SMTP client `421 4.7.0` and never a cleartext path.
 * Each failed attempt writes one audit line: the dialer's `tls.handshake` (or its `upstream.error`
 * when TCP never came up), or ours for connect, greeting, EHLO and STARTTLS failures.
 */
export async function serveTunnel(client: Socket, opts: TunnelOptions): Promise<void> {
  client.pause();
  const timeout = opts.setupTimeoutMs;
  let upstream: UpstreamTls;
  let greeting: string | undefined;
  // The download side reads into a reused buffer; after STARTTLS (TLS over the existing socket,
  // where Node has no `onread`) the upstream's 'data' events are forwarded instead.
  let reader: UpstreamReader | undefined;
  try {
    if (opts.starttls === 'smtp') {
      ({ upstream, greeting } = await dialStarttls(opts.target, opts.heloName, timeout, opts.dial));
    } else {
      reader = new UpstreamReader();
      upstream = await dialTls(opts.target, opts.dial, undefined, reader.onread);
    }
  } catch (err) {
    if (opts.starttls === 'smtp' && client.writable) {
      client.end(`421 4.7.0 ticketbooth: no secure path to ${opts.target.host}: ${oneLine((err as Error).message)}\r\n`);
    } else {
      client.destroy();
    }
    return;
  }
  if (greeting) {
    client.write(greeting);
    // The client answers the greeting at once; its EHLO must not overtake the server's tickets.
    await ticketsSettled(upstream);
  }
  await relay(client, upstream, opts.idleTimeoutMs, reader);
}

/** Both directions until both sides are done; the upstream is closed gracefully to keep late tickets. */
function relay(client: Socket, upstream: UpstreamTls, idleTimeoutMs: number, reader?: UpstreamReader): Promise<void> {
  const server = upstream.socket;
  return new Promise((resolve) => {
    // The client may have gone while the upstream was being set up (a health check's connect and
    // RST): its 'close' and 'end' have fired already, so look at its state, not only its events.
    if (client.destroyed) {
      reader?.stop();
      void upstream.close().then(() => resolve());
      return;
    }
    if (idleTimeoutMs > 0) {
      // Each byte relayed is a read on one socket and a write on the other, so a stream flowing
      // either way keeps both timers fresh; silence on the client side means silence both ways.
      client.setTimeout(idleTimeoutMs, () => client.destroy());
    }
    // Each socket closes once: plain listeners, no once() wrappers.
    let pending = 2;
    const done = (): void => {
      if (--pending === 0) resolve();
    };
    server.on('error', () => client.destroy());
    forward(client, server, { end: false });
    // Before the 'close' listener below: a client that goes stops this side and pauses the server
    // first, and the graceful close then resumes it, to read on to the server's FIN.
    if (reader) reader.relayTo(server, client);
    else forward(server, client, { end: true });
    // However the client goes (reset, or cut by the listener at the shutdown timeout), the upstream
    // follows, gracefully: otherwise it stays open and this session never ends.
    client.on('close', () => {
      void upstream.close();
      done();
    });
    // The client's FIN goes on to the server, whose reply still flows back (half-close); a client
    // that cannot be written to any more is gone: close upstream gracefully, keeping late tickets.
    const onClientEnd = (): void => (client.writable ? void server.end() : void upstream.close());
    if (client.readableEnded) onClientEnd();
    else client.on('end', onClientEnd);
    server.on('close', () => {
      // Usually ended already by the relay of the server's FIN: a second end() builds an error.
      if (!client.destroyed && !client.writableEnded) client.end();
      done();
    });
    client.resume();
  });
}
