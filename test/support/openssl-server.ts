import type { CertPair } from './certs.js';
import { spawnReady, type ReadyProcess } from './spawn-ready.js';

export interface OpensslServer {
  host: string;
  port: number;
  process: ReadyProcess;
  stop(): Promise<void>;
}

/**
 * `openssl s_server -www` on an ephemeral loopback port, ready when it prints `ACCEPT host:port`.
 * Its page for `GET /` says `New, ...` or `Reused, ...`: the server's own verdict. `flags` pick the
 * ticket behaviour, e.g. `['-tls1_3', '-max_early_data', '16384']` refuses a reused ticket.
 */
export async function startOpensslServer(cert: CertPair, flags: string[]): Promise<OpensslServer> {
  const proc = await spawnReady(
    'openssl',
    ['s_server', '-accept', '127.0.0.1:0', '-cert', cert.certFile, '-key', cert.keyFile, '-www', ...flags],
    /ACCEPT 127\.0\.0\.1:(\d+)/,
  );
  return { host: '127.0.0.1', port: Number(proc.ready[1]), process: proc, stop: () => proc.stop() };
}
