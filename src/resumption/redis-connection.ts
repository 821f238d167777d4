import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { parseListen } from '../net/listen-address.js';
import { tlsFailure } from './redis-tls-probe.js';

/** TLS to the servers and the sentinels: PEM text (not file names), read at start. */
export interface RedisTls {
  /** Trust anchors instead of the system's. */
  ca?: string;
  /** A client certificate (chain) and its key, for `tls-auth-clients yes`. */
  cert?: string;
  key?: string;
}

/** Where the Redis store connects: one server, or the primary of a Sentinel group. Passwords already read. */
export type RedisTarget = {
  /** An ACL user and its password for the Redis servers (not set: the URL's, if any). */
  username?: string;
  password?: string;
  /** With a `rediss://` url, or for the sentinels and the servers they name. */
  tls?: RedisTls;
} & (
  | {
      /** `redis://[user:password@]host:port[/db]` (or `rediss://`). */
      url: string;
    }
  | {
      /** `HOST:PORT` of some or all of the sentinels, asked in turn. */
      sentinels: readonly string[];
      /** The master name the sentinels monitor. */
      name: string;
      sentinelUsername?: string;
      sentinelPassword?: string;
    }
  | {
      /** `HOST:PORT` of some or all nodes of a Redis Cluster; the client learns the rest. */
      cluster: readonly string[];
    }
);

/** The store's client: one server (standalone or the Sentinel primary), or a cluster. */
export type RedisClient = Redis | Cluster;

/** Reconnect soon after a loss (50 ms more per attempt, at most 500 ms apart): a promoted replica is used within half a second. */
const retry = (attempt: number): number => Math.min(attempt * 50, 500);

/**
 * The store's client, not yet connected. Both forms fail fast while Redis is away instead of
 * queueing (a connection must not wait on the cache) and never resend a command after a
 * reconnect: a take that may have run is not run twice (single use). With Sentinel, ioredis asks
 * the sentinels for the primary on every (re)connect, checks the node's role, and listens for
 * `+switch-master` on the sentinels (failoverDetector), so it moves to a promoted replica even
 * when the old primary is still reachable; a READONLY reply (a demoted primary) reconnects too.
 */
function createRedisClient(target: RedisTarget, commandTimeoutMs: number): RedisClient {
  const common: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 5000,
    retryStrategy: retry,
    reconnectOnError: (err) => /\bREADONLY\b/.test(err.message),
    ...(target.username !== undefined ? { username: target.username } : {}),
    ...(target.password !== undefined ? { password: target.password } : {}),
    ...(target.tls ? { tls: { ...target.tls } } : {}),
  };
  if ('url' in target) return new Redis(target.url, common);
  if ('cluster' in target) return createClusterClient(target.cluster, common);
  let ready = false;
  const redis = new Redis({
    ...common,
    sentinels: target.sentinels.map((s) => parseListen(s)),
    name: target.name,
    ...(target.sentinelUsername !== undefined ? { sentinelUsername: target.sentinelUsername } : {}),
    ...(target.sentinelPassword !== undefined ? { sentinelPassword: target.sentinelPassword } : {}),
    sentinelCommandTimeout: commandTimeoutMs,
    // The same TLS to the sentinels and to the primary they name.
    ...(target.tls ? { sentinelTLS: { ...target.tls }, enableTLSForSentinelMode: true } : {}),
    // Every sentinel unreachable, or none naming a primary: at start, fail (ioredis would retry
    // for ever, and the start would hang); once running, from scratch again, as for a lost primary.
    sentinelRetryStrategy: (attempt) => (ready ? retry(attempt) : null),
    failoverDetector: true,
  });
  redis.once('ready', () => (ready = true));
  // ioredis (6.0) ends a Sentinel client for good when its connector is disconnected while it
  // asks a sentinel for the primary, which is what the failover detector does on `+switch-master`
  // arriving during a reconnection (bench/sentinel-recovery.ts forces it): start it again, unless
  // the store closed it.
  redis.on('end', () => {
    if (!ready || closed.has(redis)) return;
    setTimeout(() => {
      if (!closed.has(redis)) redis.connect().catch(() => undefined);
    }, retry(1));
  });
  return redis;
}

/** Clients the store closed: not started again. */
const closed = new WeakSet<RedisClient>();

/** QUIT, then the socket closed (which also ends the Sentinel subscriptions of the failover detector, which QUIT leaves open). */
export async function closeRedis(redis: RedisClient): Promise<void> {
  closed.add(redis);
  try {
    await redis.quit();
  } catch {
    /* away already */
  } finally {
    redis.disconnect();
  }
}

/**
 * A Redis Cluster client: ioredis follows MOVED and ASK (a redirected command had not run, so
 * resending it keeps single use) and, after a failover, asks the nodes for the slots again. It
 * reads from primaries only: a take must be atomic on the slot's primary.
 */
function createClusterClient(seeds: readonly string[], common: RedisOptions): Cluster {
  const { lazyConnect, retryStrategy, ...node } = common;
  let ready = false;
  const cluster = new Cluster(
    seeds.map((s) => parseListen(s)),
    {
      lazyConnect,
      enableOfflineQueue: false,
      scaleReads: 'master',
      redisOptions: node,
      // No node answering at start fails the start; once running, retry as for a lost server.
      clusterRetryStrategy: (attempt) => (ready && retryStrategy ? retryStrategy(attempt) : null),
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
    },
  );
  cluster.once('ready', () => (ready = true));
  return cluster;
}

/**
 * Connects and checks the server answers; rejects, saying why, when it cannot (a wrong URL, no
 * primary, a refused password). Errors after that surface as rejected commands; ioredis reconnects.
 */
export async function openRedis(target: RedisTarget, commandTimeoutMs: number): Promise<RedisClient> {
  const redis = createRedisClient(target, commandTimeoutMs);
  // ioredis reports why (a refused AUTH, a sentinel that knows no such master) only as events.
  let why: string | undefined;
  const note = (err: Error): void => void (why = err.message);
  redis.on('error', note);
  redis.on('sentinelError', note);
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    const tls = target.tls && (await tlsFailure(...firstNode(target), target.tls));
    const reason = tls ? `TLS: ${tls}` : why;
    const detail = reason && !(err as Error).message.includes(reason) ? ` (${reason})` : '';
    throw new Error(`cache.store: cannot reach ${describeTarget(target)}: ${(err as Error).message}${detail}`, { cause: err });
  } finally {
    redis.off('sentinelError', note);
  }
  redis.off('error', note);
  redis.on('error', () => undefined);
  return redis;
}

/** The server (or the first sentinel) to ask why TLS fails. */
function firstNode(target: RedisTarget): [string, number] {
  if ('sentinels' in target || 'cluster' in target) {
    const { host, port } = parseListen('sentinels' in target ? target.sentinels[0] : target.cluster[0]);
    return [host, port];
  }
  const u = new URL(target.url);
  return [u.hostname.replace(/^\[|\]$/g, ''), Number(u.port || 6379)];
}

/** For messages (no password): `Redis at redis://user:***@host:6379`, or the Sentinel group. */
export function describeTarget(target: RedisTarget): string {
  if ('url' in target) return `Redis at ${redact(target.url)}`;
  if ('cluster' in target) return `Redis Cluster (${target.cluster.join(', ')})`;
  return `Redis primary of ${target.name} (Sentinel ${target.sentinels.join(', ')})`;
}

/** The address of the node the client is connected to (with Sentinel, the primary it was given). */
export function connectedNode(redis: RedisClient): string {
  if (redis instanceof Cluster) return `the cluster (${redis.nodes('master').length} primaries)`;
  const s = redis.stream as { remoteAddress?: string; remotePort?: number } | undefined;
  return s?.remoteAddress ? `${s.remoteAddress}:${s.remotePort}` : 'unknown address';
}

/** The URL without its password. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}
