import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, createServer } from 'node:net';
import { once } from 'node:events';
import { test } from 'node:test';
import { freeTcpPort } from '../support/ports.js';
import { SYSTEM_CONFIG } from '../../src/config/config-search.js';

/** What the CLI tells a person for the mistakes a new operator makes: the exit status and the words. */

/** The CLI and tsx by absolute location, so a test may run it from any folder (`cwd`). */
const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

function cli(
  args: string[],
  until?: RegExp,
  where: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', TSX, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...where });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      // A long-running command (a tunnel) is stopped once it said what the test waits for.
      if (until?.test(stderr)) child.kill('SIGTERM');
    });
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('--version prints the package version', async () => {
  const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
  const r = await cli(['--version']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout.trim(), version);
});

test('audit of a file that does not exist: the report of what was read, the file named on stderr, exit 1', async () => {
  const r = await cli(['audit', '/nonexistent/audit.jsonl']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /ticketbooth audit: \/nonexistent\/audit\.jsonl: ENOENT/);
  assert.match(r.stdout, /^ticketbooth audit: 0 TLS handshakes to 0 destinations/);
});

test('health --timeout that is no number is refused, exit 2', async () => {
  const r = await cli(['health', '--timeout', 'abc']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--timeout: expected milliseconds, not "abc"/);
});

test('health --config without admin: says there is no /readyz, checks the listeners are bound instead', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tb-health-'));
  const port = await freeTcpPort();
  const file = join(dir, 'no-admin.yaml');
  writeFileSync(file, `listeners:\n  - { name: mx, type: smtp, listen: 127.0.0.1:${port}, route: { mode: mx } }\n`);
  const down = await cli(['health', '--config', file]);
  assert.equal(down.code, 1);
  assert.match(
    down.stdout,
    /no-admin\.yaml has no admin section, so there is no \/readyz to probe; checking only that each listener is bound/,
  );
  assert.match(down.stdout, /add `admin: \{ listen: 0\.0\.0\.0:9464 \}` for the readiness check/);
  assert.match(down.stdout, new RegExp(`^mx 127\\.0\\.0\\.1:${port}: nothing listening$`, 'm'));
  const server = createServer().listen(port, '127.0.0.1');
  await once(server, 'listening');
  try {
    const up = await cli(['health', '--config', file]);
    assert.equal(up.code, 0, up.stdout);
    assert.match(up.stdout, new RegExp(`^mx 127\\.0\\.0\\.1:${port}: listening$`, 'm'));
  } finally {
    server.close();
  }
});

test('tunnel --insecure warns that the upstream certificate is not checked', async () => {
  const port = await freeTcpPort();
  const r = await cli(['tunnel', '--listen', '127.0.0.1:0', '--connect', `127.0.0.1:${port}`, '--insecure'], /listening on/);
  assert.match(r.stderr, new RegExp(`--insecure: the certificate of 127\\.0\\.0\\.1:${port} is not checked`));
  assert.equal(r.code, 0, 'and it ran, and stopped on SIGTERM');
});

test('log.format json: every stderr line is one JSON object with time, level and msg; log.level warn drops the info lines', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tb-log-'));
  const closed = await freeTcpPort();
  const config = (level: string, listen: string): string => {
    const f = join(dir, `${level}.yaml`);
    writeFileSync(
      f,
      `listeners:\n  - name: t\n    type: tunnel\n    listen: ${listen}\n    upstream: { host: 127.0.0.1, port: ${closed} }\nlog: { format: json, level: ${level} }\n`,
    );
    return f;
  };
  const parsed = (stderr: string): Array<{ time?: string; level?: string; msg?: string }> =>
    stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { time?: string; level?: string; msg?: string });
  const info = parsed((await cli(['serve', '-c', config('info', '127.0.0.1:0')], /listening on/)).stderr);
  assert.ok(info.every((o) => o.time && o.level && o.msg));
  assert.ok(info.some((o) => o.level === 'info' && o.msg?.startsWith('t listening on 127.0.0.1:')));
  // At warn: a client through the tunnel to a closed port is said (warn), the start is not (info).
  const port = await freeTcpPort();
  const running = cli(['serve', '-c', config('warn', `127.0.0.1:${port}`)], /failed at connect/);
  await connectOnceListening(port);
  const warn = parsed((await running).stderr);
  assert.ok(warn.length > 0 && warn.every((o) => o.level === 'warn'), JSON.stringify(warn));
  assert.match(warn[0].msg ?? '', new RegExp(`^t: 127\\.0\\.0\\.1:${closed} failed at connect \\(connect\\)`));
});

test('serve without --config, from another folder: $TICKETBOOTH_CONFIG is read, and the file named on stderr', async () => {
  const elsewhere = mkdtempSync(join(tmpdir(), 'tb-cwd-'));
  const file = join(mkdtempSync(join(tmpdir(), 'tb-env-')), 'mine.yaml');
  writeFileSync(file, 'listeners:\n  - { name: mine, type: tunnel, listen: 127.0.0.1:0, upstream: { host: 127.0.0.1, port: 1 } }\n');
  const env = { ...process.env, TICKETBOOTH_CONFIG: file };
  const r = await cli(['serve'], /mine listening on/, { cwd: elsewhere, env });
  assert.match(r.stderr, new RegExp(`^ticketbooth: config ${file.replace(/\./g, '\\.')} \\(from \\$TICKETBOOTH_CONFIG\\)$`, 'm'));
  assert.match(r.stderr, /^ticketbooth: mine listening on 127\.0\.0\.1:\d+$/m);
  // The variable naming a file that is not there: said, exit 2, nothing else tried.
  const missing = await cli(['serve'], undefined, { cwd: elsewhere, env: { ...env, TICKETBOOTH_CONFIG: join(elsewhere, 'nope.yaml') } });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /\$TICKETBOOTH_CONFIG names .*nope\.yaml, which does not exist/);
});

test("without --config or $TICKETBOOTH_CONFIG the package's config is found from where it is installed, not from the current folder", async () => {
  // A folder with a config/default.yaml of its own that would not even parse: it must not be read.
  const elsewhere = mkdtempSync(join(tmpdir(), 'tb-cwd-'));
  mkdirSync(join(elsewhere, 'config'));
  writeFileSync(join(elsewhere, 'config', 'default.yaml'), 'listeners: [decoy\n');
  const env = { ...process.env };
  delete env.TICKETBOOTH_CONFIG;
  const r = await cli(['health', '--timeout', '1000'], undefined, { cwd: elsewhere, env });
  const expected = existsSync(SYSTEM_CONFIG)
    ? `${SYSTEM_CONFIG} (no --config or $TICKETBOOTH_CONFIG)`
    : `${fileURLToPath(new URL('../../config/default.yaml', import.meta.url))} (the package's default`;
  assert.ok(r.stderr.startsWith(`ticketbooth: config ${expected}`), r.stderr);
  assert.doesNotMatch(r.stderr + r.stdout, /decoy|invalid YAML/);
  // It probed that config's admin listener (whether something answers there is not this test's business).
  assert.match(r.stdout, /^http:\/\/127\.0\.0\.1:9464\/readyz: /);
});

/** Connects (retrying while nothing listens yet) and sends a byte, so the tunnel dials its upstream. */
async function connectOnceListening(port: number): Promise<void> {
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.end('x');
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50)); // the process is still starting: try again shortly
  }
}
