import type { CacheConfig } from '../config/schema.js';
import { MemoryTicketStore } from './memory-store.js';
import type { TicketStore } from './store.js';

/** The Redis client (~14 MiB of RSS) is loaded only for a Redis store. */
export async function createStore(cache: CacheConfig): Promise<TicketStore> {
  switch (cache.store.type) {
    case 'memory':
      return new MemoryTicketStore(cache.maxDestinations);
    case 'redis': {
      const { RedisTicketStore } = await import('./redis-store.js');
      return RedisTicketStore.connect({ url: cache.store.url, prefix: cache.store.prefix, maxDestinations: cache.maxDestinations });
    }
  }
}
