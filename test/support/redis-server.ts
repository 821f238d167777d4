import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeTcpPort } from './ports.js';
import { startProcess, type RunningProcess } from './process.js';

export interface RedisServer {
  port: number;
  url: string;
  process: RunningProcess;
  stop(): Promise<void>;
}

/**
 * A private Debian `redis-server` on a free loopback port, in its own temp dir, with no
 * persistence; ready when it logs "Ready to accept connections". Redis cannot listen on port 0,
 * so a free port is picked first (and picked again if another process took it meanwhile);
 * `fixedPort` restarts one where an earlier one was.
 */
export async function startRedisServer(extra: string[] = [], fixedPort?: number): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'tb-redis-'));
  let lastError: unknown;
  for (let attempt = 0; attempt < (fixedPort ? 1 : 5); attempt++) {
    const port = fixedPort ?? (await freeTcpPort());
    try {
      const proc = await startProcess(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extra],
        { ready: /Ready to accept connections/, cwd: dir },
      );
      return {
        port,
        url: `redis://127.0.0.1:${port}`,
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
