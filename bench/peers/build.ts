/**
 * Ticketbooth as it ships: `node --max-semi-space-size=2 dist/src/cli.js`, so its CPU and RSS are
 * the product's, not tsx's. `ensureBuilt()` runs `tsc -p tsconfig.json` once per bench process when
 * a file under src/ is newer than its build (or has none).
 */
import { execFile } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = join(ROOT, 'dist', 'src', 'cli.js');
/** The runtime flag the shebang, `npm start` and the image use. */
export const NODE_FLAGS = ['--max-semi-space-size=2'];

let building: Promise<string> | undefined;

/** Resolves with what it did (`built` or `up to date`), for the section's notes. */
export function ensureBuilt(): Promise<string> {
  building ??= build();
  return building;
}

async function build(): Promise<string> {
  if (!stale()) return 'dist/ up to date';
  const started = performance.now();
  await promisify(execFile)(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], {
    cwd: ROOT,
  });
  return `built dist/ (tsc, ${((performance.now() - started) / 1000).toFixed(0)} s)`;
}

function stale(): boolean {
  const src = join(ROOT, 'src');
  for (const rel of readdirSync(src, { recursive: true, encoding: 'utf8' })) {
    if (!rel.endsWith('.ts')) continue;
    const out = join(ROOT, 'dist', 'src', rel.replace(/\.ts$/, '.js'));
    try {
      if (statSync(out).mtimeMs < statSync(join(src, rel)).mtimeMs) return true;
    } catch {
      return true;
    }
  }
  return false;
}
