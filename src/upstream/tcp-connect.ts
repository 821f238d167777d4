import { connect, type Socket } from 'node:net';
import { UpstreamError } from '../errors/index.js';

/**
 * A plain TCP connection with a deadline. A failure is an `UpstreamError` at stage `connect` that
 * names the destination and keeps Node's error (`ECONNREFUSED`, `EHOSTUNREACH` ...) as its cause;
 * `ERR_UPSTREAM_TIMEOUT` when our deadline passed first.
 */
export function connectTcp(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // Every upstream dialogue (SMTP commands, a STARTTLS handshake's last flight, then relayed
    // writes) is small writes awaiting an answer: Nagle would hold each behind a delayed ACK.
    const socket = connect({ host, port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new UpstreamError(`connect to ${host}:${port} timed out`, 'connect', 'ERR_UPSTREAM_TIMEOUT'));
    }, timeoutMs);
    const onError = (err: NodeJS.ErrnoException): void => {
      clearTimeout(timer);
      reject(new UpstreamError(`connect to ${host}:${port}: ${err.message}`, 'connect', 'ERR_UPSTREAM_CONNECT', { cause: err }));
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.on('error', () => undefined); // later errors surface as 'close' to whoever reads it
      resolve(socket);
    });
  });
}
