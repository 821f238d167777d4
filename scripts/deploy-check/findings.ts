/** One thing wrong with a deployment file: the file (relative to the repository), where in it, what. */
export interface Finding {
  file: string;
  /** Dotted path in the document (`spec.template.spec.containers[0].image`); absent for the file as a whole. */
  path?: string;
  message: string;
}

/** What a check looked at (one line each, for the report) and what it found wrong. */
export interface CheckResult {
  checked: string[];
  findings: Finding[];
  /** Checks that could not run here (a program missing), with the reason. */
  skipped: string[];
}

export function emptyResult(): CheckResult {
  return { checked: [], findings: [], skipped: [] };
}

export function merge(into: CheckResult, from: CheckResult): CheckResult {
  into.checked.push(...from.checked);
  into.findings.push(...from.findings);
  into.skipped.push(...from.skipped);
  return into;
}

/** `a.b` / `a[0]`: a key appended to a dotted path. */
export function joinPath(base: string, key: string | number): string {
  if (typeof key === 'number' || /^\d+$/.test(key)) return `${base}[${key}]`;
  return base ? `${base}.${key}` : key;
}

/** A JSON pointer (`/spec/replicas`, as ajv reports) as a dotted path. */
export function pointerToPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce<string>((path, key) => joinPath(path, key), '');
}

export function formatFinding(f: Finding): string {
  return `${f.file}: ${f.path ? `${f.path}: ` : ''}${f.message}`;
}

/** A plain object (a YAML mapping), for narrowing parsed documents. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
