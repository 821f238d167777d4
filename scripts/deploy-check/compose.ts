import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { load } from 'js-yaml';
import { loadConfig } from '../../src/config/load.js';
import { emptyResult, isRecord, joinPath, pointerToPath, type CheckResult } from './findings.js';

/**
 * The Compose specification's JSON schema, as the dclint package (a Compose linter) ships it:
 * node_modules/dclint/schemas/compose.schema.json, the compose-spec project's schema/compose-spec.json
 * (draft-07; every object closed to unknown keys but `x-` extensions). Pinned by package-lock.json.
 */
export function composeSchemaFile(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('dclint/package.json')), 'schemas', 'compose.schema.json');
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (isRecord(v) ? v : {});

/**
 * `file` against the Compose schema; then what the schema cannot see: `depends_on` names services
 * that exist, every ticketbooth config a service mounts parses with ticketbooth's own loader, its
 * health check reads the mounted file, and the stop grace period outlasts shutdownTimeoutSeconds.
 */
export function checkCompose(root: string, file = 'deploy/compose.yaml'): CheckResult {
  const result = emptyResult();
  let doc: unknown;
  try {
    // Compose files use YAML's full schema (anchors, merge keys), so js-yaml's default one.
    doc = load(readFileSync(join(root, file), 'utf8'), { filename: file });
  } catch (err) {
    result.findings.push({ file, message: (err as Error).message });
    return result;
  }
  const schema = JSON.parse(readFileSync(composeSchemaFile(), 'utf8')) as Obj;
  // Its $schema names draft-07 by an address Ajv does not know; Ajv's default draft is draft-07.
  delete schema.$schema;
  const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
  if (!validate(doc)) {
    for (const e of (validate.errors ?? []).slice(0, 10)) result.findings.push({ file, ...schemaError(e) });
    return result;
  }
  result.checked.push(`${file}: Compose specification schema (dclint's copy)`);

  const services = obj(obj(doc).services);
  const configs = obj(obj(doc).configs);
  for (const [name, svc] of Object.entries(services)) {
    const path = joinPath('services', name);
    const deps = obj(svc).depends_on;
    for (const dep of Array.isArray(deps) ? deps : Object.keys(obj(deps)))
      if (!(String(dep) in services))
        result.findings.push({ file, path: `${path}.depends_on`, message: `no service named ${String(dep)}` });
    for (const ref of Array.isArray(obj(svc).configs) ? (obj(svc).configs as unknown[]) : []) {
      // The short syntax is the config's name (mounted at /NAME); the long one an object.
      const long = obj(ref);
      const sourceName = typeof ref === 'string' ? ref : typeof long.source === 'string' ? long.source : '';
      const target = typeof long.target === 'string' ? long.target : `/${sourceName}`;
      const source = obj(configs[sourceName]).file;
      if (!target.endsWith('ticketbooth.yaml') || typeof source !== 'string') continue;
      const configFile = relative(root, join(root, dirname(file), source));
      try {
        const config = loadConfig(join(root, configFile));
        result.checked.push(`${configFile}: ticketbooth config (ticketbooth's loader), mounted by ${path}`);
        const test = obj(obj(svc).healthcheck).test;
        if (!Array.isArray(test) || !test.includes('health') || test[test.indexOf('--config') + 1] !== target)
          result.findings.push({ file, path: `${path}.healthcheck.test`, message: `must run \`health --config ${target}\`` });
        const grace = seconds(obj(svc).stop_grace_period ?? '10s');
        if (grace <= config.shutdownTimeoutSeconds)
          result.findings.push({
            file,
            path: `${path}.stop_grace_period`,
            message: `${grace} s is not more than shutdownTimeoutSeconds (${config.shutdownTimeoutSeconds} s)`,
          });
      } catch (err) {
        result.findings.push({ file: configFile, message: (err as Error).message.replace(`${join(root, configFile)}: `, '') });
      }
    }
  }
  return result;
}

function schemaError(e: ErrorObject): { path: string; message: string } {
  const extra = e.keyword === 'additionalProperties' ? String((e.params as { additionalProperty?: string }).additionalProperty) : undefined;
  const path = pointerToPath(e.instancePath);
  if (extra) return { path: joinPath(path, extra), message: `unknown key "${extra}"` };
  return { path: path || '(top level)', message: e.message ?? e.keyword };
}

/** A Compose duration (`40s`, `1m30s`, `500ms`) in seconds. */
function seconds(v: unknown): number {
  const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001, us: 1e-6 };
  let total = 0;
  for (const [, n, u] of String(v).matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us)/g)) total += Number(n) * (units[u ?? 's'] ?? 0);
  return total;
}
