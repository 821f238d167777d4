import type { AddressInfo, Server } from 'node:net';
import { say } from '../util/operator-log.js';

/** Splits `HOST:PORT` or `[v6]:PORT` (the host unbracketed; empty for `:PORT`); undefined for anything else. */
export function splitHostPort(value: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value);
  return m ? { host: m[1] ?? m[2] ?? '', port: Number(m[3]) } : undefined;
}

/** Splits `HOST:PORT`, `[v6]:PORT` or `PORT` (loopback). */
export function parseListen(listen: string): { host: string; port: number } {
  const hp = splitHostPort(listen);
  if (hp) return { host: hp.host || '127.0.0.1', port: hp.port };
  if (/^\d+$/.test(listen)) return { host: '127.0.0.1', port: Number(listen) };
  throw new Error(`listen: "${listen}" is not HOST:PORT`);
}

/** Binds `server` to a listen address; rejects on a bind error (address in use, not local). */
export async function listenOn(server: Server, listen: string): Promise<AddressInfo> {
  const { host, port } = parseListen(listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      // An accept failure (ENFILE, ENOBUFS) is an 'error' on the server: without a listener it
      // would end the process. Say it and keep serving the connections already open.
      server.on('error', (err) => say('error', `${listen}: ${err.message}`));
      resolve();
    });
  });
  return server.address() as AddressInfo;
}
