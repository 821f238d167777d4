import { join } from 'node:path';
import ts from 'typescript';
import { joinPath, type Finding } from './findings.js';

/**
 * Unknown fields in Kubernetes manifests (what `kubectl --validate=strict` and kubeconform -strict
 * refuse): the API's OpenAPI schema leaves objects open, so the JSON-schema validators of
 * kubernetes-models accept `readinesProbe` and drop it. The package's type declarations, generated
 * from the same schema, list every field; this walks a manifest against them with TypeScript's
 * checker and names each key that its object type does not have.
 */
export class UnknownFields {
  private readonly checker: ts.TypeChecker;
  private readonly roots = new Map<string, ts.Type>();

  /** `kinds`: `apiVersion/Kind` strings (`apps/v1/Deployment`, `v1/Service`). */
  constructor(kinds: readonly string[]) {
    // A file that exists only in memory, beside this one, so `kubernetes-models` resolves from the repository.
    const fileName = join(import.meta.dirname, '__manifest_kinds__.ts');
    const names = [...new Set(kinds)];
    const text = names.map((k, i) => `export type K${i} = import('kubernetes-models/${k}').I${k.split('/').pop()};`).join('\n');
    const options: ts.CompilerOptions = {
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      types: [],
    };
    const host = ts.createCompilerHost(options);
    const getSourceFile = host.getSourceFile.bind(host);
    const fileExists = host.fileExists.bind(host);
    host.getSourceFile = (f, lang, ...rest) => (f === fileName ? ts.createSourceFile(f, text, lang) : getSourceFile(f, lang, ...rest));
    host.fileExists = (f) => f === fileName || fileExists(f);
    const program = ts.createProgram([fileName], options, host);
    this.checker = program.getTypeChecker();
    const source = program.getSourceFile(fileName);
    source?.statements.forEach((s, i) => {
      const name = names[i];
      if (name && ts.isTypeAliasDeclaration(s)) this.roots.set(name, this.checker.getTypeAtLocation(s.name));
    });
  }

  /** Whether the types of `apiVersion/Kind` were found (an unknown kind is reported by the caller). */
  knows(kind: string): boolean {
    const t = this.roots.get(kind);
    return t !== undefined && (t.flags & ts.TypeFlags.Any) === 0;
  }

  check(kind: string, doc: unknown, file: string): Finding[] {
    const findings: Finding[] = [];
    const root = this.roots.get(kind);
    if (root) this.walk(doc, root, '', file, findings);
    return findings;
  }

  private walk(value: unknown, type: ts.Type, path: string, file: string, out: Finding[]): void {
    if (value === null || typeof value !== 'object') return;
    const t = this.checker.getNonNullableType(type);
    const members = t.isUnion() ? t.types : [t];
    if (Array.isArray(value)) {
      const element = members
        .map((m) => (this.checker.isArrayType(m) ? this.checker.getTypeArguments(m as ts.TypeReference)[0] : undefined))
        .find(Boolean);
      if (element) value.forEach((v, i) => this.walk(v, element, joinPath(path, i), file, out));
      return;
    }
    const objects = members.filter((m) => (m.flags & ts.TypeFlags.Object) !== 0 && !this.checker.isArrayType(m));
    // No object type here (any, unknown, a scalar): the JSON-schema validation speaks for the value.
    if (objects.length === 0) return;
    // A type with neither properties nor an index signature ({}, object) says nothing about keys.
    if (objects.some((m) => m.getProperties().length === 0 && !this.checker.getIndexTypeOfType(m, ts.IndexKind.String))) return;
    for (const [key, v] of Object.entries(value)) {
      const next = this.fieldType(objects, key);
      if (next) this.walk(v, next, joinPath(path, key), file, out);
      else out.push({ file, path: joinPath(path, key), message: `unknown field "${key}"` });
    }
  }

  private fieldType(objects: readonly ts.Type[], key: string): ts.Type | undefined {
    for (const m of objects) {
      const prop = m.getProperty(key);
      if (prop) return this.checker.getTypeOfSymbol(prop);
      const index = this.checker.getIndexTypeOfType(m, ts.IndexKind.String);
      if (index) return index;
    }
    return undefined;
  }
}
