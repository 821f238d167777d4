import { readConfigBytes } from '../config/files.js';
import type { SealConfig } from '../config/store-schema.js';
import { parseSealKey, Sealer } from './seal.js';

/**
 * The sealer `cache.store.seal` describes, its keys read once at start from their files or
 * variables; a missing or malformed key fails the start naming the key, never showing its bytes.
 */
export function loadSealer(seal: SealConfig, env: NodeJS.ProcessEnv = process.env): Sealer {
  const keys = seal.keys.map((k, i) => {
    const where = `cache.store.seal.keys[${i}] (${k.id})`;
    let raw: Buffer;
    if (k.file !== undefined) {
      raw = readConfigBytes(k.file, 'key', where);
    } else {
      const value = env[k.env ?? ''];
      if (value === undefined) throw new Error(`${where}: environment variable ${k.env} is not set`);
      raw = Buffer.from(value, 'latin1');
    }
    try {
      return { id: k.id, key: parseSealKey(raw) };
    } catch (err) {
      throw new Error(`${where}: ${k.file !== undefined ? `file ${k.file}` : `variable ${k.env}`} ${(err as Error).message}`, {
        cause: err,
      });
    }
  });
  return new Sealer(keys, seal.current);
}
