import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { CORE_SCHEMA, loadAll } from 'js-yaml';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { emptyResult, isRecord, pointerToPath, type CheckResult, type Finding } from './findings.js';
import { UnknownFields } from './k8s-fields.js';
import { crossCheckKubernetes, type Manifest } from './k8s-consistency.js';

interface ModelClass {
  new (data: unknown): { validate(): void };
}
interface AjvError {
  instancePath: string;
  message?: string;
  params?: Record<string, unknown>;
}

/**
 * Every manifest under `dir` (`.yaml`, several documents each): against the Kubernetes API's schema
 * as the kubernetes-models package carries it (its validators are compiled from the API's OpenAPI
 * document, Kubernetes 1.36), with unknown fields refused; the ticketbooth config inside a ConfigMap
 * through ticketbooth's own loader; then the manifests against each other (k8s-consistency.ts).
 */
export async function checkKubernetes(root: string, dir = 'deploy/kubernetes'): Promise<CheckResult> {
  const result = emptyResult();
  const manifests: Manifest[] = [];
  const files = readdirSync(join(root, dir))
    .filter((f) => f.endsWith('.yaml'))
    .sort();
  for (const name of files) {
    const file = relative(root, join(root, dir, name));
    let docs: unknown[];
    try {
      docs = loadAll(readFileSync(join(root, file), 'utf8'), null, { schema: CORE_SCHEMA, filename: file }).filter((d) => d != null);
    } catch (err) {
      result.findings.push({ file, message: `invalid YAML: ${(err as Error).message}` });
      continue;
    }
    docs.forEach((doc, index) => {
      if (!isRecord(doc) || typeof doc.apiVersion !== 'string' || typeof doc.kind !== 'string') {
        result.findings.push({
          file,
          path: `document ${index + 1}`,
          message: 'not a Kubernetes object (apiVersion and kind are required)',
        });
        return;
      }
      manifests.push({ file, index, kind: `${doc.apiVersion}/${doc.kind}`, doc });
    });
  }
  const fields = new UnknownFields(manifests.map((m) => m.kind));
  const configs = new Map<Manifest, Config>();
  for (const m of manifests) {
    const before = result.findings.length;
    result.findings.push(...(await schemaFindings(m)));
    if (fields.knows(m.kind)) result.findings.push(...fields.check(m.kind, m.doc, m.file).map((f) => at(m, f)));
    const config = ticketboothConfig(m, result.findings);
    if (config) configs.set(m, config);
    if (result.findings.length === before)
      result.checked.push(`${m.file}: ${m.kind} ${name(m)} (Kubernetes 1.36 schema, no unknown field)`);
  }
  const cross = crossCheckKubernetes(manifests, configs);
  result.findings.push(...cross.findings);
  result.checked.push(...cross.checked);
  return result;
}

function name(m: Manifest): string {
  const meta = m.doc.metadata;
  return isRecord(meta) && typeof meta.name === 'string' ? meta.name : '(no name)';
}

/** A finding of a later document in a file says which document it is. */
function at(m: Manifest, f: Finding): Finding {
  return m.index === 0 ? f : { ...f, path: `document ${m.index + 1}: ${f.path ?? ''}` };
}

async function schemaFindings(m: Manifest): Promise<Finding[]> {
  let model: ModelClass | undefined;
  try {
    const mod = (await import(`kubernetes-models/${m.kind}`)) as Record<string, unknown>;
    model = mod[String(m.doc.kind)] as ModelClass | undefined;
  } catch {
    // reported below
  }
  if (!model) return [at(m, { file: m.file, message: `unknown kind ${m.kind} (not in the Kubernetes 1.36 API)` })];
  try {
    new model(m.doc).validate();
    return [];
  } catch (err) {
    const errors = (err as { errors?: AjvError[] }).errors;
    if (!errors) return [at(m, { file: m.file, message: (err as Error).message })];
    return errors
      .slice(0, 10)
      .map((e) => at(m, { file: m.file, path: pointerToPath(e.instancePath) || '(top level)', message: ajvMessage(e) }));
  }
}

function ajvMessage(e: AjvError): string {
  const allowed = e.params?.allowedValues;
  return `${e.message ?? 'invalid'}${Array.isArray(allowed) ? `: ${allowed.join(', ')}` : ''}`;
}

/** A ConfigMap's `ticketbooth.yaml` key, parsed as ticketbooth would at start. */
function ticketboothConfig(m: Manifest, findings: Finding[]): Config | undefined {
  const text = m.kind === 'v1/ConfigMap' && isRecord(m.doc.data) ? m.doc.data['ticketbooth.yaml'] : undefined;
  if (typeof text !== 'string') return undefined;
  const label = 'data."ticketbooth.yaml"';
  try {
    return parseConfig(text, label);
  } catch (err) {
    findings.push(at(m, { file: m.file, path: label, message: (err as Error).message.replace(`${label}: `, '') }));
    return undefined;
  }
}
