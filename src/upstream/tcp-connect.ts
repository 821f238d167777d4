import { connect, type Socket } from 'node:net';

/** A plain TCP connection with a deadline; the error names the destination. */
export function connectTcp(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TcpConnectError(`connect to ${host}:${port} timed out`));
    }, timeoutMs);
    const onError = (err: Error): void => {
      clearTimeout(timer);
      reject(new TcpConnectError(`connect to ${host}:${port}: ${err.message}`));
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
  readonly code = 'ERR_UPSTREAM_CONNECT';
}
