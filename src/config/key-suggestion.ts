import { configSchema } from './schema.js';

/**
 * A hint for a key the schema refused at `path` of the document `raw`: the key of that very object
 * closest to it (a typo: at most 2 edits, or a case slip), or, when the object is one branch of a
 * `type:` union and another branch has the key, which `type` it goes with. Only the keys of the
 * object at `path` are candidates: a key valid elsewhere in the config (`tls` of the Redis store,
 * proposed for the memory store) is no answer to "which key did you mean here".
 */
export function keyHint(key: string, path: readonly PropertyKey[], raw: unknown): string | undefined {
  const here = objectsAt(configSchema, path, raw);
  const close = closest(
    key,
    here.flatMap((o) => o.keys),
  );
  if (close !== undefined && close !== key) return `did you mean "${close}"?`;
  const owners = siblingsAt(configSchema, path, raw).filter((o) => o.keys.includes(key) && o.tag !== undefined);
  if (owners.length > 0) return `"${key}" goes with ${owners.map((o) => `${o.tagKey}: ${o.tag}`).join(' or ')}`;
  return undefined;
}

interface SchemaLike {
  _zod?: { def?: Def };
}

interface Def {
  type?: string;
  shape?: Readonly<Record<string, SchemaLike>>;
  innerType?: SchemaLike;
  in?: SchemaLike;
  element?: SchemaLike;
  valueType?: SchemaLike;
  options?: readonly SchemaLike[];
  discriminator?: string;
  values?: readonly unknown[];
}

/** An object schema's keys, and the value of the union's discriminator that selects it (if it is a union branch). */
interface ObjectKeys {
  keys: string[];
  tagKey?: string;
  tag?: string;
}

/** The object schemas `raw` is checked against at `path` (a union narrowed by `raw`'s `type`). */
function objectsAt(schema: SchemaLike | undefined, path: readonly PropertyKey[], raw: unknown): ObjectKeys[] {
  return branchesAt(schema, path, raw, true);
}

/** Every branch of the union at `path`, whatever `raw`'s `type` says: where a refused key belongs. */
function siblingsAt(schema: SchemaLike | undefined, path: readonly PropertyKey[], raw: unknown): ObjectKeys[] {
  return branchesAt(schema, path, raw, false);
}

function branchesAt(schema: SchemaLike | undefined, path: readonly PropertyKey[], raw: unknown, narrow: boolean): ObjectKeys[] {
  const last = path.length === 0;
  return unwrap(schema, raw, last ? narrow : true).flatMap(({ def, tagKey, tag }): ObjectKeys[] => {
    if (last) return def.type === 'object' ? [{ keys: Object.keys(def.shape ?? {}), tagKey, tag }] : [];
    const [step, ...rest] = path;
    const next =
      typeof step === 'number' ? (def.element ?? def.valueType) : def.type === 'record' ? def.valueType : def.shape?.[String(step)];
    return next ? branchesAt(next, rest, child(raw, step), narrow) : [];
  });
}

/** Through optional/default/prefault/pipe wrappers and unions, to the object (or array, record) underneath. */
function unwrap(schema: SchemaLike | undefined, raw: unknown, narrow: boolean): Array<{ def: Def; tagKey?: string; tag?: string }> {
  const def = schema?._zod?.def;
  if (!def) return [];
  const inner = def.innerType ?? (def.type === 'pipe' ? def.in : undefined);
  if (inner) return unwrap(inner, raw, narrow);
  if (def.type !== 'union') return [{ def }];
  const tagKey = def.discriminator;
  const wanted = tagKey !== undefined && narrow ? child(raw, tagKey) : undefined;
  return (def.options ?? []).flatMap((option) => {
    const tag = tagKey === undefined ? undefined : literalAt(option, tagKey);
    if (wanted !== undefined && tag !== undefined && tag !== wanted) return [];
    return unwrap(option, raw, narrow).map((u) => ({ ...u, tagKey, tag }));
  });
}

/** The literal value of `key` in an object schema (a union branch's discriminator). */
function literalAt(schema: SchemaLike, key: string): string | undefined {
  const [branch] = unwrap(schema, undefined, false);
  const values = unwrap(branch?.def.shape?.[key], undefined, false)[0]?.def.values;
  return typeof values?.[0] === 'string' ? values[0] : undefined;
}

function child(raw: unknown, step: PropertyKey): unknown {
  return raw !== null && typeof raw === 'object' ? (raw as Record<PropertyKey, unknown>)[step] : undefined;
}

/** The candidate closest to `key`: at most 2 edits (fewer for short keys), or the same but for case. */
function closest(key: string, candidates: readonly string[]): string | undefined {
  let best: { key: string; distance: number } | undefined;
  for (const k of new Set(candidates)) {
    const d = k.toLowerCase() === key.toLowerCase() ? 0 : editDistance(k, key);
    if (d <= Math.min(2, Math.floor(key.length / 3)) && (!best || d < best.distance)) best = { key: k, distance: d };
  }
  return best?.key;
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
