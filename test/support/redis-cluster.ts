import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { startRedisServer, type RedisServer } from './redis-server.js';
import { waitForOutput } from './redis-sentinel.js';

export interface RedisClusterOptions {
  primaries?: number;
  /** Replicas per primary (a failover needs one). */
  replicas?: number;
  /** `cluster-node-timeout`: how long a primary may be silent before its replica takes over. */
  nodeTimeoutMs?: number;
}

export interface RedisCluster {
  nodes: RedisServer[];
  /** `127.0.0.1:PORT` of every node, for `cache.store.cluster`. */
  seeds: string[];
  /** The node serving the hash slot of `key` now (its primary). */
  primaryOf(key: string): Promise<RedisServer>;
  stop(): Promise<void>;
}

/**
 * A Redis Cluster on loopback from Debian's redis-server (`--cluster-enabled yes`), joined with
 * `redis-cli --cluster create ... --cluster-yes`. Ready once every node has logged "Cluster state
 * changed: ok" and every replica has finished its first sync, each seen in its own log.
 */
export async function startRedisCluster(opts: RedisClusterOptions = {}): Promise<RedisCluster> {
  const primaries = opts.primaries ?? 3;
  const replicas = opts.replicas ?? 0;
  const nodes: RedisServer[] = [];
  const stop = async (): Promise<void> => void (await Promise.all(nodes.map((n) => n.stop())));
  try {
    const extra = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'];
    extra.push('--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 1000), '--repl-diskless-sync-delay', '0');
    const started = await Promise.allSettled(Array.from({ length: primaries * (1 + replicas) }, () => startRedisServer(extra)));
    nodes.push(...started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])));
    for (const r of started) if (r.status === 'rejected') throw r.reason;
    const seeds = nodes.map((n) => `127.0.0.1:${n.port}`);
    await promisify(execFile)('redis-cli', ['--cluster', 'create', ...seeds, '--cluster-replicas', String(replicas), '--cluster-yes']);
    await Promise.all(nodes.map((n) => waitForOutput(n.process, /Cluster state changed: ok/, 1, 20_000)));
    const roles = await clusterNodes(nodes[0].port);
    const replicaNodes = nodes.filter((n) => roles.some((r) => r.port === n.port && r.replica));
    await Promise.all(replicaNodes.map((n) => waitForOutput(n.process, /MASTER <-> REPLICA sync: Finished with success/, 1, 20_000)));
    return {
      nodes,
      seeds,
      stop,
      primaryOf: async (key) => {
        const raw = new Redis(nodes[0].port);
        try {
          const slot = await raw.cluster('KEYSLOT', key);
          const serving = (await clusterNodes(nodes[0].port)).find((r) => !r.replica && r.slots.some(([a, b]) => slot >= a && slot <= b));
          const node = nodes.find((n) => n.port === serving?.port);
          if (!node) throw new Error(`no node serves slot ${slot}`);
          return node;
        } finally {
          raw.disconnect();
        }
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** `CLUSTER NODES` as port, role and slot ranges. */
async function clusterNodes(port: number): Promise<{ port: number; replica: boolean; slots: [number, number][] }[]> {
  const raw = new Redis(port);
  try {
    const text = (await raw.cluster('NODES')) as string;
    return text
      .trim()
      .split('\n')
      .map((line) => {
        const f = line.split(' ');
        const slots = f
          .slice(8)
          .flatMap((r): [number, number][] => (/^\d/.test(r) ? [[Number(r.split('-')[0]), Number(r.split('-').at(-1))]] : []));
        return { port: Number(/:(\d+)@/.exec(f[1])?.[1]), replica: /\b(slave|replica)\b/.test(f[2]) && !/fail/.test(f[2]), slots };
      });
  } finally {
    raw.disconnect();
  }
}
