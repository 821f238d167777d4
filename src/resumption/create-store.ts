import type { CacheConfig } from '../config/schema.js';
import { MemoryTicketStore } from './memory-store.js';
import { RedisTicketStore } from './redis-store.js';
import type { TicketStore } from './store.js';

export async function createStore(cache: CacheConfig): Promise<TicketStore> {
  switch (cache.store.type) {
    case 'memory':
      return new MemoryTicketStore(cache.maxDestinations);
    case 'redis':
      return RedisTicketStore.connect({ url: cache.store.url, prefix: cache.store.prefix, maxDestinations: cache.maxDestinations });
  }
}
