import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { freeTcpPort } from '../support/ports.js';

/** What the CLI tells a person for the mistakes a new operator makes: the exit status and the words. */

function cli(args: string[], until?: RegExp): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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

test('tunnel --insecure warns that the upstream certificate is not checked', async () => {
  const port = await freeTcpPort();
  const r = await cli(['tunnel', '--listen', '127.0.0.1:0', '--connect', `127.0.0.1:${port}`, '--insecure'], /listening on/);
  assert.match(r.stderr, new RegExp(`--insecure: the certificate of 127\\.0\\.0\\.1:${port} is not checked`));
  assert.equal(r.code, 0, 'and it ran, and stopped on SIGTERM');
});
