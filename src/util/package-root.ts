import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The folder of ticketbooth's own package.json: found by walking up from this module, which sits at
 * src/util/ when run through tsx and at dist/src/util/ when built, wherever it is installed. Files
 * shipped with the package (its version, config/default.yaml) are found from here, never from the
 * current folder.
 */
export function packageRoot(): { dir: string; version?: string } | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'ticketbooth') return { dir, version: pkg.version };
    } catch {
      // not here: one folder up
    }
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}
