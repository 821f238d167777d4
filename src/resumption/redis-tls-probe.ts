import { connect } from 'node:tls';
import type { RedisTls } from './redis-connection.js';

/**
 * Why a TLS handshake with `host:port` fails, in a few words (`self-signed certificate in
 * certificate chain`, `tlsv13 alert certificate required`), or undefined when it succeeds. Asked
 * only after the store failed to start: ioredis reports a failed handshake as "Connection is
 * closed" (and, through the sentinels, not at all).
 */
export function tlsFailure(host: string, port: number, tls: RedisTls, timeoutMs = 5000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, ...tls, ...(/^[\d.]+$|:/.test(host) ? {} : { servername: host }) });
    const done = (why: string | undefined): void => {
      socket.destroy();
      resolve(why);
    };
    socket.setTimeout(timeoutMs, () => done(`no TLS handshake within ${timeoutMs} ms`));
    // TLS 1.3: the server checks the client certificate after the client's Finished, so only an
    // answer to a PING (+PONG, or -NOAUTH: any reply) shows the handshake was accepted.
    socket.once('secureConnect', () => socket.write('PING\r\n'));
    socket.once('data', () => done(undefined));
    socket.once('error', (err: Error) => done(brief(err)));
    socket.once('end', () => done('the server closed the connection during the handshake'));
  });
}

/** OpenSSL's `...:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:...` as its reason alone. */
function brief(err: Error): string {
  return /:SSL routines:[^:]*:([^:]+):/.exec(err.message)?.[1] ?? err.message.trim();
}
