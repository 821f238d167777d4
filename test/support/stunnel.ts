import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CertPair } from './certs.js';
import { startProcess } from './process.js';

export interface StunnelClient {
  host: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * Debian's stunnel4 as a client-mode peer: plaintext in, TLS out to `upstream`, verifying the chain
 * and `servername`. Its client session cache is one session per service (see resumption-facts.md).
 * It binds port 0 and logs the port it got (`bound to 127.0.0.1:N`), then `Accepting new connections`.
 */
export async function startStunnelClient(
  upstream: { host: string; port: number },
  cert: CertPair,
  servername = 'localhost',
): Promise<StunnelClient> {
  const dir = mkdtempSync(join(tmpdir(), 'tb-stunnel-'));
  const file = join(dir, 'stunnel.conf');
  writeFileSync(
    file,
    [
      'foreground = yes',
      'pid =',
      'debug = 6',
      '[peer]',
      'client = yes',
      'accept = 127.0.0.1:0',
      `connect = ${upstream.host}:${upstream.port}`,
      `sni = ${servername}`,
      `checkHost = ${servername}`,
      'verifyChain = yes',
      `CAfile = ${cert.certFile}`,
      '',
    ].join('\n'),
  );
  try {
    const proc = await startProcess('stunnel4', [file], { ready: /bound to 127\.0\.0\.1:(\d+)[\s\S]*Accepting new connections/ });
    return {
      host: '127.0.0.1',
      port: Number(proc.ready[1]),
      stop: async () => {
        await proc.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
