/**
 * The shipped build: src/cli.ts and everything it imports, dependencies included, bundled by esbuild
 * into dist/src/cli.js and the chunks it loads (dist/src/chunks/). A few files load and compile
 * faster and smaller than ~270 modules: idle RSS falls by several MiB (docs/measured.md, "Where the
 * idle memory goes"). Each `import()` in src stays a split point, so listener types, the Redis
 * store, tlsmgr, the admin listener and the audit report are still loaded only when used.
 * Whitespace is minified (module sources stay in the heap); names are kept, and the source maps
 * beside the chunks give `node --enable-source-maps` the original lines.
 *   node --import tsx scripts/bundle.ts [OUTDIR]   (default dist; `npm run build` runs it)
 */
import { build, type Metafile } from 'esbuild';
import { readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The runtime flags of src/cli.ts's shebang (`#!/usr/bin/env -S node --flag...`), which the bundle keeps: for whatever starts it with `node` itself. */
export const RUNTIME_FLAGS = readFileSync(join(ROOT, 'src', 'cli.ts'), 'utf8')
  .split('\n', 1)[0]
  .split(' ')
  .filter((w) => w.startsWith('--'));

/** Bundles into `outDir`/src (emptied first); resolves with esbuild's metafile (which output holds which input). */
export async function bundle(outDir = join(ROOT, 'dist')): Promise<Metafile> {
  rmSync(outDir, { recursive: true, force: true });
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: ['src/cli.ts'],
    outdir: join(outDir, 'src'),
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    chunkNames: 'chunks/[name]-[hash]',
    minifyWhitespace: true,
    sourcemap: true,
    metafile: true,
    logLevel: 'warning',
    // The CommonJS dependencies inside an ES module call require() for Node's builtins.
    banner: { js: "import { createRequire as __tbRequire } from 'node:module'; const require = __tbRequire(import.meta.url);" },
  });
  renamedClasses(result.metafile);
  return result.metafile;
}

/**
 * esbuild renames a top-level name that two modules share (`Foo` and `Foo2`); on a class that would
 * change an error's `name` (errors/index.ts takes it from the class), so the build refuses it.
 */
function renamedClasses(meta: Metafile): void {
  const text = Object.keys(meta.outputs)
    .filter((f) => f.endsWith('.js'))
    .map((f) => readFileSync(resolve(ROOT, f), 'utf8'))
    .join('\n');
  const classes = new Set([...text.matchAll(/\bclass ([A-Za-z_$][\w$]*)/g)].map((m) => m[1]));
  const renamed = [...classes].filter((c) => /\D\d+$/.test(c) && classes.has(c.replace(/\d+$/, '')));
  if (renamed.length > 0) throw new Error(`classes renamed by the bundler (${renamed.join(', ')}): give them distinct names`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await bundle(process.argv[2] ? resolve(process.argv[2]) : undefined);
}
