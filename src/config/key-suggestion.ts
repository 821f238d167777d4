import { configSchema } from './schema.js';

/** Every key any object of the config schema knows, found once by walking the schema. */
let known: string[] | undefined;

/** The known config key closest to `key` (a typo: at most 2 edits, or a case slip), if there is one. */
export function didYouMean(key: string): string | undefined {
  known ??= [...collectKeys(configSchema, new Set(), new Set())];
  let best: { key: string; distance: number } | undefined;
  for (const k of known) {
    const d = k.toLowerCase() === key.toLowerCase() ? 0 : editDistance(k, key);
    if (d <= Math.min(2, Math.floor(key.length / 3)) && (!best || d < best.distance)) best = { key: k, distance: d };
  }
  return best?.key;
}

interface SchemaLike {
  _zod?: { def?: Record<string, unknown> };
}

function collectKeys(schema: unknown, keys: Set<string>, seen: Set<unknown>): Set<string> {
  if (!schema || typeof schema !== 'object' || seen.has(schema)) return keys;
  seen.add(schema);
  const def = (schema as SchemaLike)._zod?.def;
  if (!def) return keys;
  const shape = def.shape as Record<string, unknown> | undefined;
  if (shape) {
    for (const [k, v] of Object.entries(shape)) {
      keys.add(k);
      collectKeys(v, keys, seen);
    }
  }
  // Wrappers and containers: optional/default/prefault (innerType), pipe/transform (in, out),
  // unions (options), arrays (element), records (valueType).
  for (const field of ['innerType', 'in', 'out', 'element', 'valueType']) collectKeys(def[field], keys, seen);
  for (const option of (def.options as unknown[] | undefined) ?? []) collectKeys(option, keys, seen);
  return keys;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}
