import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { startProcess, type RunningProcess } from '../support/process.js';

/**
 * What `serve` with config/default.yaml holds in memory, asserted by what it loaded (issue 27, idle
 * RSS): no Redis client with a memory store, no chart.js outside the audit report, and not undici
 * and http2, which an ES `import` of node:http pulls in through its WebSocket getters (each is
 * MiBs of idle RSS; docs/measured.md has the figure). Through tsx, as the sources are; the bundle
 * that ships is checked the same way in built-entry.test.ts.
 */

// Answers SIGUSR2 with the builtins it loaded and the CommonJS modules in its cache, as one line.
const PRELOAD = `data:text/javascript,${encodeURIComponent(`
import { createRequire } from 'node:module';
const cache = createRequire(process.cwd() + '/').cache;
process.on('SIGUSR2', () => process.stderr.write('MODULES ' + JSON.stringify({ builtins: process.moduleLoadList, cjs: Object.keys(cache) }) + '\\n'));
`)}`;

const dir = mkdtempSync(join(tmpdir(), 'tb-serve-modules-'));
let tb: RunningProcess | undefined;
after(async () => {
  await tb?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('serve on the default config loads no Redis client, chart.js, undici or http2', async () => {
  // The default config with every port 0: the machine may run another instance on the real ones.
  const config = join(dir, 'default.yaml');
  writeFileSync(config, readFileSync('config/default.yaml', 'utf8').replace(/^(\s*listen: 127\.0\.0\.1:)\d+/gm, '$10'));
  tb = await startProcess(process.execPath, ['--import', PRELOAD, '--import', 'tsx', 'src/cli.ts', 'serve', '--config', config], {
    ready: /admin \([^)]*\) listening on/,
    timeoutMs: 30_000,
  });
  tb.child.kill('SIGUSR2');
  const line = await new Promise<string>((resolve) => {
    const look = (): void => {
      const m = /^MODULES (.*)$/m.exec(tb!.output());
      if (m) resolve(m[1]);
      else tb!.child.stderr!.once('data', look);
    };
    look();
  });
  const { builtins, cjs } = JSON.parse(line) as { builtins: string[]; cjs: string[] };
  for (const b of ['internal/deps/undici/undici', 'http2'])
    assert.ok(!builtins.includes(`NativeModule ${b}`), `node:${b} loaded: ${builtins.filter((x) => x.includes(b)).join(', ')}`);
  for (const pkg of ['ioredis', 'chart.js'])
    assert.deepEqual(
      cjs.filter((f) => f.includes(`/node_modules/${pkg}/`)),
      [],
      `${pkg} loaded`,
    );
  // The check sees what it is meant to: the CommonJS cache holds prom-client, which the admin endpoint uses.
  assert.ok(cjs.some((f) => f.includes('/node_modules/prom-client/')));
});
