import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeTcpPort } from './ports.js';
import { startProcess, type RunningProcess } from './process.js';

/** PEM files for a Redis that speaks TLS only (`tls-auth-clients yes`): its certificate, and the CA its clients must be issued by. */
export interface RedisTlsFiles {
  certFile: string;
  keyFile: string;
  /** Trust anchors for client certificates (and, between servers, for each other). */
  caFile: string;
}

/** The config lines (or, with `--`, the arguments) that make a server listen with TLS alone on `port`. */
export function tlsLines(tls: RedisTlsFiles, port: number): string[] {
  return [
    'port 0',
    `tls-port ${port}`,
    `tls-cert-file ${tls.certFile}`,
    `tls-key-file ${tls.keyFile}`,
    `tls-ca-cert-file ${tls.caFile}`,
    'tls-auth-clients yes',
    'tls-replication yes',
  ];
}

export interface RedisServer {
  port: number;
  /** `redis://127.0.0.1:PORT`, or `rediss://` with TLS. */
  url: string;
  process: RunningProcess;
  stop(): Promise<void>;
}

/**
 * A private Debian `redis-server` on a free loopback port, in its own temp dir, with no
 * persistence; ready when it logs "Ready to accept connections". Redis cannot listen on port 0,
 * so a free port is picked first (and picked again if another process took it meanwhile);
 * `fixedPort` restarts one where an earlier one was; with `tls`, it listens with TLS only.
 */
export async function startRedisServer(extra: string[] = [], fixedPort?: number, tls?: RedisTlsFiles): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'tb-redis-'));
  let lastError: unknown;
  for (let attempt = 0; attempt < (fixedPort ? 1 : 5); attempt++) {
    const port = fixedPort ?? (await freeTcpPort());
    try {
      const proc = await startProcess(
        'redis-server',
        [
          ...(tls ? tlsLines(tls, port).flatMap((l) => [`--${l.split(' ')[0]}`, ...l.split(' ').slice(1)]) : ['--port', String(port)]),
          ...['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extra],
        ],
        { ready: /Ready to accept connections/, cwd: dir },
      );
      return {
        port,
        url: `${tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`,
        process: proc,
        stop: async () => {
          await proc.stop();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (err) {
      lastError = err; // most likely the port was taken between the probe and the bind
    }
  }
  rmSync(dir, { recursive: true, force: true });
  throw lastError;
}
