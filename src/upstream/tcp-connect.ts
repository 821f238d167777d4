import { connect, type Socket } from 'node:net';

/** A plain TCP connection with a deadline; the error names the destination and keeps Node's code. */
export function connectTcp(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TcpConnectError(`connect to ${host}:${port} timed out`, 'ERR_UPSTREAM_TIMEOUT'));
    }, timeoutMs);
    const onError = (err: NodeJS.ErrnoException): void => {
      clearTimeout(timer);
      reject(new TcpConnectError(`connect to ${host}:${port}: ${err.message}`, err.code ?? 'ERR_UPSTREAM_CONNECT', { cause: err }));
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

export class TcpConnectError extends Error {
  constructor(
    message: string,
    /** Node's code (`ECONNREFUSED`, `EHOSTUNREACH` ...), or `ERR_UPSTREAM_TIMEOUT` when our deadline passed first. */
    readonly code: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
