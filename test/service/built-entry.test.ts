import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import nodeModule from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Metafile } from 'esbuild';
import { bundle, RUNTIME_FLAGS } from '../../scripts/bundle.js';
import { makeCert } from '../support/certs.js';
import { missing } from '../support/interop.js';
import { sample } from '../support/metrics.js';
import { startNodeTlsServer, startProcess, verdictPlain, type NodeTlsServer, type RunningProcess } from '../support/servers.js';

/**
 * What ships: `npm run build`'s bundle (scripts/bundle.ts) in a folder laid out as the package is
 * installed (package.json beside dist/src, no node_modules: the dependencies are inside), started
 * as `npm start` and the image start it. It serves a tunnel (the TLS server's own verdict), answers
 * /metrics, and loads only the chunks its config needs: not the Redis client (memory store), no
 * workers (`workers: 1`), not undici or http2 (test/service/serve-modules.test.ts checks the same
 * through tsx).
 */

// Answers SIGUSR2 with the builtins it loaded and the files it imported, as one line.
const PRELOAD = `data:text/javascript,${encodeURIComponent(`
import { registerHooks } from 'node:module';
const files = [];
registerHooks({ load(url, context, next) { if (url.startsWith('file:')) files.push(url); return next(url, context); } });
process.on('SIGUSR2', () => process.stderr.write('MODULES ' + JSON.stringify({ builtins: process.moduleLoadList, files }) + '\\n'));
`)}`;

// module.registerHooks came in Node 22.15.
const HOOKS = typeof nodeModule.registerHooks === 'function';

describe('the built entry (dist/src/cli.js)', { skip: missing('openssl') }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tb-built-'));
  const cli = join(dir, 'dist', 'src', 'cli.js');
  let meta: Metafile;
  let server: NodeTlsServer;
  let tb: RunningProcess;

  before(async () => {
    copyFileSync('package.json', join(dir, 'package.json'));
    meta = await bundle(join(dir, 'dist'));
    const cert = makeCert(['localhost'], dir);
    server = await startNodeTlsServer({ cert, minVersion: 'TLSv1.3' });
    const config = join(dir, 'ticketbooth.yaml');
    const upstream = { host: '127.0.0.1', port: server.port, servername: 'localhost', ca: cert.certFile };
    // JSON is YAML.
    writeFileSync(
      config,
      JSON.stringify({
        listeners: [{ name: 'tun', type: 'tunnel', listen: '127.0.0.1:0', upstream }],
        cache: { store: { type: 'memory' } },
        admin: { listen: '127.0.0.1:0' },
        audit: { file: join(dir, 'audit.jsonl') },
        shutdownTimeoutSeconds: 2,
      }),
    );
    const preload = HOOKS ? ['--import', PRELOAD] : [];
    tb = await startProcess(process.execPath, [...RUNTIME_FLAGS, ...preload, cli, 'serve', '--config', config], {
      ready: /admin \([^)]*\) listening on 127\.0\.0\.1:(\d+)/,
      timeoutMs: 20_000,
    });
  });

  after(async () => {
    await tb?.stop();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('runs by its shebang, as the installed bin does, and finds its package.json', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    assert.equal(execFileSync(cli, ['--version'], { encoding: 'utf8' }).trim(), pkg.version);
  });

  test('serves a tunnel and /metrics', async () => {
    const port = Number(/tun listening on 127\.0\.0\.1:(\d+)/.exec(tb.output())![1]);
    assert.equal((await verdictPlain(port)).verdict, 'New');
    assert.equal((await verdictPlain(port)).verdict, 'Reused', 'the ticket of the first connection');
    assert.equal(server.stats.handshakes, 2);
    const text = await (await fetch(`http://127.0.0.1:${tb.ready[1]}/metrics`)).text();
    assert.equal(sample(text, 'ticketbooth_tls_handshakes_total', { listener: 'tun', resumed: 'true' }), 1);
    assert.ok(sample(text, 'process_cpu_user_seconds_total')! > 0, 'the default process metrics are there');
  });

  test('loads only the chunks its config uses', { skip: !HOOKS && 'no module.registerHooks' }, async () => {
    tb.child.kill('SIGUSR2');
    const line = await new Promise<string>((resolve) => {
      const look = (): void => {
        const m = /^MODULES (.*)$/m.exec(tb.output());
        if (m) resolve(m[1]);
        else tb.child.stderr!.once('data', look);
      };
      look();
    });
    const { builtins, files } = JSON.parse(line) as { builtins: string[]; files: string[] };
    for (const b of ['internal/deps/undici/undici', 'http2']) assert.ok(!builtins.includes(`NativeModule ${b}`), `node:${b} loaded`);
    // Each loaded chunk's inputs, as the bundler recorded them (paths relative to the repository).
    const outputs = new Map(Object.entries(meta.outputs).map(([out, o]) => [out.replace(/^.*\/dist\/src\//, ''), o]));
    const inputs = files.flatMap((url) => {
      const out = relative(join(dir, 'dist', 'src'), fileURLToPath(url));
      const o = outputs.get(out);
      assert.ok(o, `${out} is not an output of the bundle`);
      return Object.keys(o.inputs);
    });
    assert.ok(!files.some((f) => !f.startsWith(`file://${join(dir, 'dist', 'src')}/`)), `files outside the bundle: ${files.join(', ')}`);
    for (const pkg of ['ioredis', 'chart.js'])
      assert.deepEqual(
        inputs.filter((i) => i.includes(`node_modules/${pkg}/`)),
        [],
        `${pkg} loaded`,
      );
    assert.ok(!inputs.includes('src/resumption/redis-store.ts'), 'the Redis store loaded');
    assert.deepEqual(
      inputs.filter((i) => i.startsWith('src/workers/') && i !== 'src/workers/count.ts'),
      [],
      'workers: 1 loads no primary or worker',
    );
    assert.ok(
      inputs.some((i) => i.includes('node_modules/prom-client/')),
      'the check sees what it is meant to: prom-client, for /metrics',
    );
  });
});
