import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeTcpPort } from './ports.js';
import { startProcess, type RunningProcess } from './process.js';
import { tlsLines, type RedisTlsFiles } from './redis-server.js';

export interface SentinelClusterOptions {
  /** The Sentinel master name (default `tbmaster`). */
  name?: string;
  /** `requirepass` (and `masterauth`) of the primary and the replica; the sentinels get it as `auth-pass`. */
  password?: string;
  /** `requirepass` of the sentinels themselves (and `sentinel-pass`, for each other). */
  sentinelPassword?: string;
  /** `down-after-milliseconds` (default 1000) and `failover-timeout` (default 5000). */
  downAfterMs?: number;
  failoverTimeoutMs?: number;
  /** Every server and sentinel on TLS alone, with client certificates required (replication and Sentinel links too). */
  tls?: RedisTlsFiles;
}

export interface SentinelCluster {
  name: string;
  primaryPort: number;
  replicaPort: number;
  primary: RunningProcess;
  replica: RunningProcess;
  sentinels: RunningProcess[];
  /** `127.0.0.1:PORT` of each sentinel, for `cache.store.sentinels`. */
  sentinelAddresses: string[];
  /**
   * Resolves at the first `+switch-master` any sentinel logs from now on (the promotion announced),
   * with the time this process saw it and the new primary's port.
   */
  switchMaster(timeoutMs?: number): Promise<{ at: number; line: string; port: number }>;
  stop(): Promise<void>;
}

/**
 * A Redis Sentinel group on loopback, all of it in one temp dir with its own config files: a
 * Debian `redis-server` primary (no persistence), one replica (`replicaof`), and three
 * `redis-sentinel` processes watching it with quorum 2, each in the foreground. Ready once the
 * replica has synced and every sentinel has found the replica and the two other sentinels (what
 * an election needs), each seen in the process's own log, never after a sleep.
 */
export async function startSentinelCluster(opts: SentinelClusterOptions = {}): Promise<SentinelCluster> {
  const name = opts.name ?? 'tbmaster';
  const dir = mkdtempSync(join(tmpdir(), 'tb-sentinel-'));
  const started: RunningProcess[] = [];
  const auth = opts.password ? [`requirepass ${opts.password}`, `masterauth ${opts.password}`] : [];
  const listen = (port: number): string[] => (opts.tls ? tlsLines(opts.tls, port) : [`port ${port}`]);
  const redisConf = (port: number, extra: string[]): string =>
    [...listen(port), 'bind 127.0.0.1', 'save ""', 'appendonly no', `dir ${dir}`, `dbfilename dump-${port}.rdb`, ...auth, ...extra].join(
      '\n',
    );
  try {
    // No 5 s wait before the replica's first (diskless) sync.
    const primary = await onFreePort(
      dir,
      'primary',
      (port) => redisConf(port, ['repl-diskless-sync-delay 0']),
      /Ready to accept connections/,
    );
    started.push(primary.proc);
    const replica = await onFreePort(
      dir,
      'replica',
      (port) => redisConf(port, [`replicaof 127.0.0.1 ${primary.port}`]),
      /MASTER <-> REPLICA sync: Finished with success/,
    );
    started.push(replica.proc);
    const sentinelConf = (port: number): string =>
      [
        ...listen(port),
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${primary.port} 2`,
        `sentinel down-after-milliseconds ${name} ${opts.downAfterMs ?? 1000}`,
        `sentinel failover-timeout ${name} ${opts.failoverTimeoutMs ?? 5000}`,
        ...(opts.password ? [`sentinel auth-pass ${name} ${opts.password}`] : []),
        ...(opts.sentinelPassword ? [`requirepass ${opts.sentinelPassword}`, `sentinel sentinel-pass ${opts.sentinelPassword}`] : []),
      ].join('\n');
    // Started together; all settled before a failure is thrown, so that stop() gets every one started.
    const settled = await Promise.allSettled(
      [1, 2, 3].map((i) => onFreePort(dir, `sentinel-${i}`, sentinelConf, new RegExp(`\\+monitor master ${name} `), true)),
    );
    const sentinels = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    started.push(...sentinels.map((s) => s.proc));
    for (const r of settled) if (r.status === 'rejected') throw r.reason;
    // Each sentinel must know the replica (from the primary's INFO) and its two peers (hello messages).
    await Promise.all(
      sentinels.flatMap((s) => [
        waitForOutput(s.proc, new RegExp(`\\+slave slave 127\\.0\\.0\\.1:${replica.port} `), 1, 15_000),
        waitForOutput(s.proc, /\+sentinel sentinel /, 2, 15_000),
      ]),
    );
    return {
      name,
      primaryPort: primary.port,
      replicaPort: replica.port,
      primary: primary.proc,
      replica: replica.proc,
      sentinels: sentinels.map((s) => s.proc),
      sentinelAddresses: sentinels.map((s) => `127.0.0.1:${s.port}`),
      switchMaster: (timeoutMs = 30_000) => {
        const pattern = new RegExp(`\\+switch-master ${name} \\S+ \\d+ \\S+ (\\d+)`);
        const skip = sentinels.map((s) => s.proc.output().length);
        return firstLine(
          sentinels.map((s, i) => ({ proc: s.proc, from: skip[i] })),
          pattern,
          timeoutMs,
        ).then(({ at, match }) => ({ at, line: match[0], port: Number(match[1]) }));
      },
      stop: async () => {
        await Promise.all(started.map((p) => p.stop()));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await Promise.all(started.map((p) => p.stop()));
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Writes `<role>.conf` for a free port and starts the program on it in the foreground (a sentinel
 * rewrites its file, so each has its own); another free port if the bind failed (taken meanwhile).
 */
async function onFreePort(
  dir: string,
  role: string,
  conf: (port: number) => string,
  ready: RegExp,
  sentinel = false,
): Promise<{ port: number; proc: RunningProcess }> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freeTcpPort();
    const file = join(dir, `${role}.conf`);
    writeFileSync(file, `${conf(port)}\n`);
    try {
      const proc = await startProcess(sentinel ? 'redis-sentinel' : 'redis-server', [file], { ready, cwd: dir, timeoutMs: 15_000 });
      return { port, proc };
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}

/** Resolves once `pattern` has matched `count` times in the process's output (earlier output counts). */
export function waitForOutput(proc: RunningProcess, pattern: RegExp, count: number, timeoutMs: number): Promise<void> {
  const global = new RegExp(pattern.source, 'g');
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if ([...proc.output().matchAll(global)].length < count) return;
      done();
      resolve();
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`waited ${timeoutMs} ms for ${count} × ${pattern}; output:\n${proc.output()}`));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      proc.child.stdout?.off('data', check);
      proc.child.stderr?.off('data', check);
    };
    proc.child.stdout?.on('data', check);
    proc.child.stderr?.on('data', check);
    check();
  });
}

/** The first match of `pattern` in any of the processes' output past `from`, and when it was seen. */
function firstLine(
  procs: { proc: RunningProcess; from: number }[],
  pattern: RegExp,
  timeoutMs: number,
): Promise<{ at: number; match: RegExpExecArray }> {
  return new Promise((resolve, reject) => {
    const cleanups: (() => void)[] = [];
    const done = (): void => {
      clearTimeout(timer);
      for (const c of cleanups) c();
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no ${pattern} within ${timeoutMs} ms; sentinel logs:\n${procs.map((p) => p.proc.output()).join('\n---\n')}`));
    }, timeoutMs);
    for (const { proc, from } of procs) {
      const check = (): void => {
        // The output buffer is only trimmed past 1 MB: a sentinel never writes that much.
        const m = pattern.exec(proc.output().slice(from));
        if (!m) return;
        done();
        resolve({ at: Date.now(), match: m });
      };
      proc.child.stdout?.on('data', check);
      proc.child.stderr?.on('data', check);
      cleanups.push(() => {
        proc.child.stdout?.off('data', check);
        proc.child.stderr?.off('data', check);
      });
    }
  });
}
