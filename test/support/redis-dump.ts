import type { Redis } from 'ioredis';

export interface RedisValue {
  key: string;
  type: string;
  /** Every element as stored: a string's value, list items, hash fields and values, set and zset members. */
  parts: Buffer[];
}

/** Every key Redis holds (SCAN, not KEYS), each read back by its type, as raw bytes: what a dump or a replica holds. */
export async function dumpRedis(redis: Redis): Promise<RedisValue[]> {
  const out: RedisValue[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scanBuffer(cursor, 'COUNT', 500);
    cursor = String(next);
    for (const k of keys) {
      const type = await redis.type(k);
      out.push({ key: k.toString('latin1'), type, parts: await read(redis, k, type) });
    }
  } while (cursor !== '0');
  return out;
}

async function read(redis: Redis, key: Buffer, type: string): Promise<Buffer[]> {
  switch (type) {
    case 'string':
      return [(await redis.getBuffer(key)) ?? Buffer.alloc(0)];
    case 'list':
      return redis.lrangeBuffer(key, 0, -1);
    case 'hash':
      return redis.hgetallBuffer(key).then((h) => Object.entries(h).flatMap(([f, v]) => [Buffer.from(f, 'latin1'), v]));
    case 'set':
      return redis.smembersBuffer(key);
    case 'zset':
      return redis.zrangeBuffer(key, '0', '-1');
    default:
      throw new Error(`a ${type} at ${key.toString('latin1')}: not read by this test`);
  }
}
