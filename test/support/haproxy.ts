import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeTcpPort } from './ports.js';
import { startProcess } from './process.js';

export interface Haproxy {
  host: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * Debian's haproxy in TCP mode, round-robin over the given backends: with a TLS 1.2 and a TLS 1.3
 * backend, the version-mixed load balancer. haproxy cannot bind port 0, so a free port is picked
 * (and picked again if someone took it meanwhile). Master-worker mode says `Loading success.` once
 * the worker listens: that is the readiness event.
 */
export async function startHaproxy(
  /** `server`: options for this server's line (e.g. `check port 9464`). */
  backends: Array<{ host: string; port: number; server?: string }>,
  /** Extra `backend` lines (e.g. `option redispatch`) and options for every `server` line (e.g. `check inter 100`). */
  extra: { backend?: string[]; server?: string } = {},
): Promise<Haproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'tb-haproxy-'));
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freeTcpPort();
    const file = join(dir, 'haproxy.cfg');
    writeFileSync(
      file,
      [
        'global',
        '  maxconn 256',
        'defaults',
        '  mode tcp',
        '  timeout connect 5s',
        '  timeout client 30s',
        '  timeout server 30s',
        'frontend fe',
        `  bind 127.0.0.1:${port}`,
        '  default_backend be',
        'backend be',
        '  balance roundrobin',
        ...(extra.backend ?? []).map((l) => `  ${l}`),
        ...backends.map(
          (b, i) =>
            `  server s${i} ${b.host}:${b.port}${[extra.server, b.server]
              .filter(Boolean)
              .map((o) => ` ${o}`)
              .join('')}`,
        ),
        '',
      ].join('\n'),
    );
    try {
      const proc = await startProcess('haproxy', ['-W', '-db', '-f', file], { ready: /Loading success\./, group: true });
      return {
        host: '127.0.0.1',
        port,
        stop: async () => {
          await proc.stop();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (err) {
      lastError = err; // most likely the port was taken between freeTcpPort() and bind
    }
  }
  rmSync(dir, { recursive: true, force: true });
  throw lastError;
}
