import { readPassword } from '../config/files.js';
import type { CacheConfig } from '../config/schema.js';
import type { RedisStoreConfig } from '../config/store-schema.js';
import { MemoryTicketStore } from './memory-store.js';
import type { RedisTarget } from './redis-connection.js';
import type { TicketStore } from './store.js';

/** The Redis client (~14 MiB of RSS) is loaded only for a Redis store. */
export async function createStore(cache: CacheConfig): Promise<TicketStore> {
  switch (cache.store.type) {
    case 'memory':
      return new MemoryTicketStore(cache.maxDestinations);
    case 'redis': {
      const target = redisTarget(cache.store);
      const { RedisTicketStore } = await import('./redis-store.js');
      return RedisTicketStore.connect({ ...target, prefix: cache.store.prefix, maxDestinations: cache.maxDestinations });
    }
  }
}

/** The config's URL or Sentinel group, with the passwords read from their files or variables. */
function redisTarget(s: RedisStoreConfig): RedisTarget {
  const auth = s.auth ? { username: s.auth.username, password: readPassword(s.auth, 'cache.store.auth') } : {};
  if (s.sentinels === undefined || s.name === undefined) return { url: s.url ?? '', ...auth };
  const sentinelAuth = s.sentinelAuth
    ? { sentinelUsername: s.sentinelAuth.username, sentinelPassword: readPassword(s.sentinelAuth, 'cache.store.sentinelAuth') }
    : {};
  return { sentinels: s.sentinels, name: s.name, ...auth, ...sentinelAuth };
}
