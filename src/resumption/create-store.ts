import { readConfigFile, readPassword } from '../config/files.js';
import type { CacheConfig } from '../config/schema.js';
import type { RedisStoreConfig } from '../config/store-schema.js';
import { say } from '../util/operator-log.js';
import { MemoryTicketStore } from './memory-store.js';
import type { RedisTarget, RedisTls } from './redis-connection.js';
import { loadSealer } from './seal-keys.js';
import { ResumptionCache, type Resumption } from './policy.js';
import type { SharedValues, StoreBackend, StoreHealth } from './store.js';

/** The store in its three parts: the tickets behind the policy, the shared values, the health. */
export interface Store {
  resumption: Resumption;
  values: SharedValues;
  health: StoreHealth;
}

export async function createStore(cache: CacheConfig): Promise<Store> {
  const backend = await openBackend(cache);
  return { resumption: new ResumptionCache(backend, cache), values: backend, health: backend };
}

/** The Redis client (~14 MiB of RSS) is loaded only for a Redis store. */
async function openBackend(cache: CacheConfig): Promise<StoreBackend> {
  switch (cache.store.type) {
    case 'memory':
      return new MemoryTicketStore(cache.maxDestinations);
    case 'redis': {
      const target = redisTarget(cache.store);
      const sealer = cache.store.seal ? loadSealer(cache.store.seal) : undefined;
      if (!sealer) {
        say(
          'warn',
          'cache.store: no seal: TLS sessions (their resumption and master secrets) are written to Redis in the clear, ' +
            'so every replica, RDB/AOF file and backup holds them; set cache.store.seal (docs/fleet.md: "Sealed at rest")',
        );
      }
      const { RedisTicketStore } = await import('./redis-store.js');
      return RedisTicketStore.connect({
        ...target,
        prefix: cache.store.prefix,
        maxDestinations: cache.maxDestinations,
        ...(sealer ? { sealer } : {}),
        ...(cache.store.replicaAck ? { replicaAck: cache.store.replicaAck } : {}),
      });
    }
  }
}

/** The config's URL or Sentinel group, with the passwords and TLS files read. */
function redisTarget(s: RedisStoreConfig): RedisTarget {
  const auth = s.auth ? { username: s.auth.username, password: readPassword(s.auth, 'cache.store.auth') } : {};
  const tls = s.tls ? { tls: readTls(s.tls) } : {};
  if (s.cluster !== undefined) return { cluster: s.cluster, ...auth, ...tls };
  if (s.sentinels === undefined || s.name === undefined) return { url: s.url ?? '', ...auth, ...tls };
  const sentinelAuth = s.sentinelAuth
    ? { sentinelUsername: s.sentinelAuth.username, sentinelPassword: readPassword(s.sentinelAuth, 'cache.store.sentinelAuth') }
    : {};
  return { sentinels: s.sentinels, name: s.name, ...auth, ...sentinelAuth, ...tls };
}

/** The PEM files' text, read once at start (a missing file fails the start naming `cache.store.tls`). */
function readTls(t: NonNullable<RedisStoreConfig['tls']>): RedisTls {
  const read = (file: string | undefined, what: string): string | undefined =>
    file === undefined ? undefined : readConfigFile(file, what, 'cache.store.tls');
  const [ca, cert, key] = [read(t.ca, 'CA'), read(t.cert, 'certificate'), read(t.key, 'key')];
  return { ...(ca !== undefined ? { ca } : {}), ...(cert !== undefined && key !== undefined ? { cert, key } : {}) };
}
