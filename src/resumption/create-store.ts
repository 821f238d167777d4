import type { CacheConfig } from '../config/schema.js';
import { MemoryTicketStore } from './memory-store.js';
import type { TicketStore } from './store.js';

export async function createStore(cache: CacheConfig): Promise<TicketStore> {
  switch (cache.store.type) {
    case 'memory':
      return new MemoryTicketStore(cache.maxDestinations);
    case 'redis':
      throw new Error('cache.store.type: redis is not available in this build');
  }
}
