/**
 * Ticketbooth as it ships: `npm run build`'s bundle (dist/src/cli.js, scripts/bundle.ts) run with
 * the runtime flags of its shebang, as the bin, `npm start` and the image run it, so its CPU and RSS
 * are the product's, not tsx's. `ensureBuilt()` bundles once per bench process (under a second).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundle, RUNTIME_FLAGS } from '../../scripts/bundle.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = join(ROOT, 'dist', 'src', 'cli.js');
/** The runtime flags of the CLI's shebang, which `npm start` and the image pass too. */
export const NODE_FLAGS = RUNTIME_FLAGS;

let building: Promise<string> | undefined;

/** Resolves with what it did, for the section's notes. */
export function ensureBuilt(): Promise<string> {
  building ??= build();
  return building;
}

async function build(): Promise<string> {
  const started = performance.now();
  await bundle();
  return `bundled dist/ (scripts/bundle.ts, ${((performance.now() - started) / 1000).toFixed(1)} s)`;
}
