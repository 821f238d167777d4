import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CertPair } from './certs.js';
import { startProcess } from './process.js';

export interface StunnelClient {
  host: string;
  port: number;
  /** The stunnel process (one process, a thread per connection). */
  pid: number;
  /** What stunnel logged so far. */
  output(): string;
  stop(): Promise<void>;
}

export interface StunnelOptions {
  /** SNI and the name checked in the certificate; default `localhost`. */
  servername?: string;
  /** `smtp`: stunnel reads the greeting (passed on to the client), sends EHLO and STARTTLS itself, then TLS. */
  protocol?: 'smtp';
  /**
   * The service's log level, which governs the per-connection lines: 5 (notice, stunnel's default)
   * unless given. Start-up lines are logged at 6 whatever this says: they carry the bound port.
   */
  serviceDebug?: number;
}

/**
 * Debian's stunnel4 as a client-mode peer: plaintext in, TLS out to `upstream`, verifying the chain
 * and `servername`. Its client session cache is one session per service (see resumption-facts.md).
 * It binds port 0 and logs the port it got (`bound to 127.0.0.1:N`, at the global level 6), then
 * `Accepting new connections`; each connection logs at the service's level.
 */
export async function startStunnelClient(
  upstream: { host: string; port: number },
  cert: CertPair,
  opts: StunnelOptions = {},
): Promise<StunnelClient> {
  const servername = opts.servername ?? 'localhost';
  const dir = mkdtempSync(join(tmpdir(), 'tb-stunnel-'));
  const file = join(dir, 'stunnel.conf');
  writeFileSync(
    file,
    [
      'foreground = yes',
      'pid =',
      'debug = 6',
      // Logs to stderr only: by default it also logs via syslog, which without a syslog daemon
      // (no /dev/log, as in containers) falls back to /dev/console, milliseconds per line.
      'syslog = no',
      '[peer]',
      `debug = ${opts.serviceDebug ?? 5}`,
      'client = yes',
      'accept = 127.0.0.1:0',
      `connect = ${upstream.host}:${upstream.port}`,
      ...(opts.protocol ? [`protocol = ${opts.protocol}`] : []),
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
      pid: proc.child.pid ?? NaN,
      output: proc.output,
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
