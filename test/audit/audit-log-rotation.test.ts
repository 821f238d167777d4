import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { AuditLog } from '../../src/audit/audit-log.js';
import { makeCert } from '../support/certs.js';
import { missing } from '../support/interop.js';
import { startNodeTlsServer, startProcess, verdictPlain } from '../support/servers.js';

/** The audit file can be rotated, by rename + reopen (logrotate + SIGHUP) or by size, without losing a line. */

function record(log: AuditLog, i: number): void {
  log.record({ event: 'client.refused', listener: 'rotation', client: `127.0.0.1:${i}`, reason: 'allow-list' });
}

function indexes(files: string[]): number[] {
  return files
    .flatMap((f) => readFileSync(f, 'utf8').split('\n'))
    .filter((l) => l !== '')
    .map((l) => Number((JSON.parse(l) as { client: string }).client.split(':')[1]));
}

function assertExactlyOnce(got: number[], total: number): void {
  assert.equal(got.length, total, `${got.length} lines, expected ${total}`);
  assert.deepEqual(
    [...got].sort((a, b) => a - b),
    Array.from({ length: total }, (_, i) => i),
  );
}

describe('audit log rotation', () => {
  test('rename, reopen while lines are in flight, write more: every line in exactly one file, in order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tb-rotate-'));
    const file = join(dir, 'audit.jsonl');
    const log = new AuditLog({ file });
    for (let i = 0; i < 5000; i++) record(log, i);
    renameSync(file, `${file}.1`); // what logrotate does first
    const reopened = log.reopen(); // what SIGHUP does; lines written so far may still be buffered
    for (let i = 5000; i < 10_000; i++) record(log, i);
    assert.equal(await reopened, true);
    for (let i = 10_000; i < 12_000; i++) record(log, i);
    await log.close();
    const old = indexes([`${file}.1`]);
    const current = indexes([file]);
    // A line goes to the file open when it is recorded: the old one holds exactly what came before the reopen.
    assert.equal(old.length, 5000, `old ${old.length}, current ${current.length}`);
    assertExactlyOnce([...old, ...current], 12_000);
    assert.deepEqual(
      old,
      [...old].sort((a, b) => a - b),
      'each file in write order',
    );
    assert.deepEqual(
      current,
      [...current].sort((a, b) => a - b),
    );
  });

  test('size-based rotation (maxSize, maxFiles): the current file plus numbered ones hold every line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tb-rotate-size-'));
    const file = join(dir, 'audit.jsonl');
    const log = new AuditLog({ file, maxSize: 4096, maxFiles: 100 });
    for (let i = 0; i < 600; i++) record(log, i);
    await log.close();
    const files = readdirSync(dir).map((f) => join(dir, f));
    assert.ok(files.length > 5, `rotated into ${files.length} files`);
    assert.ok(existsSync(file) && existsSync(`${file}.1`), readdirSync(dir).join(' '));
    for (const f of files) assert.ok(readFileSync(f).length <= 4096 + 200, `${f} is about maxSize`);
    assertExactlyOnce(indexes(files), 600);
  });

  test('maxFiles bounds the rotated files (the oldest go)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tb-rotate-keep-'));
    const file = join(dir, 'audit.jsonl');
    const log = new AuditLog({ file, maxSize: 2048, maxFiles: 2 });
    for (let i = 0; i < 300; i++) record(log, i);
    await log.close();
    assert.deepEqual(readdirSync(dir).sort(), ['audit.jsonl', 'audit.jsonl.1', 'audit.jsonl.2']);
    const kept = indexes([`${file}.2`, `${file}.1`, file]);
    assert.deepEqual(
      kept,
      Array.from({ length: kept.length }, (_, i) => 300 - kept.length + i),
      'the newest lines, in order, oldest file first',
    );
  });

  test('reopen() says false when the log is not a reopenable file', async () => {
    const log = new AuditLog({});
    assert.equal(await log.reopen(), false);
    await log.close();
  });
});

describe('ticketbooth serve: SIGHUP reopens the audit file (logrotate postrotate)', { skip: missing('openssl') }, () => {
  test('GETs, rename, kill -HUP, more GETs: each handshake line in exactly one of the two files; health exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tb-sighup-'));
    const cert = makeCert(['localhost'], dir);
    const server = await startNodeTlsServer({ cert, minVersion: 'TLSv1.3' });
    const file = join(dir, 'audit.jsonl');
    const configFile = join(dir, 'ticketbooth.yaml');
    writeFileSync(
      configFile,
      [
        'listeners:',
        '  - name: t',
        '    type: tunnel',
        '    listen: 127.0.0.1:0',
        `    upstream: { host: 127.0.0.1, port: ${server.port}, servername: localhost, ca: ${cert.certFile} }`,
        `audit: { file: ${file} }`,
        'admin: { listen: 127.0.0.1:0 }',
        'shutdownTimeoutSeconds: 2',
      ].join('\n'),
    );
    const proc = await startProcess(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve', '--config', configFile], {
      ready: /t listening on 127\.0\.0\.1:(\d+)\n.*admin .* listening on 127\.0\.0\.1:(\d+)/s,
      timeoutMs: 20_000,
    });
    try {
      const port = Number(proc.ready[1]);
      const lines = (f: string): number =>
        existsSync(f)
          ? readFileSync(f, 'utf8')
              .split('\n')
              .filter((l) => l !== '').length
          : 0;
      for (let i = 0; i < 3; i++) {
        await verdictPlain(port);
        await waitForFile(dir, () => lines(file) === i + 1, 'a handshake line in the audit file');
      }
      renameSync(file, `${file}.1`);
      proc.child.kill('SIGHUP');
      await waitForFile(dir, () => existsSync(file), 'the reopened audit file');
      for (let i = 0; i < 3; i++) {
        await verdictPlain(port);
        await waitForFile(dir, () => lines(file) === i + 1, 'a handshake line in the new file');
      }
      const health = spawnSync(process.execPath, [
        '--import',
        'tsx',
        'src/cli.ts',
        'health',
        '--url',
        `http://127.0.0.1:${proc.ready[2]}/readyz`,
      ]);
      assert.equal(health.status, 0, health.stdout.toString());
    } finally {
      await proc.stop();
      await server.stop();
    }
    const handshakes = (f: string): string[] =>
      readFileSync(f, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"tls.handshake"'));
    const old = handshakes(`${file}.1`);
    const current = handshakes(file);
    assert.equal(old.length, 3);
    assert.equal(current.length, 3);
    assert.equal(new Set([...old, ...current]).size, 6, 'no line in both');
    assert.deepEqual(
      current.map((l) => (JSON.parse(l) as { resumed: boolean }).resumed),
      [false, true, true],
      'the cache went on: the 2 tickets of the first full handshake were spent, so full again',
    );
  });
});

/** Waits for a file change (fs.watch on its directory) that makes `check` true; fails after the timeout. */
function waitForFile(dir: string, check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  if (check()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (): void => {
      if (!check()) return;
      clearTimeout(timer);
      watcher.close();
      resolve();
    };
    const watcher = watch(dir, done);
    const timer = setTimeout(() => {
      watcher.close();
      reject(new Error(`timed out waiting for ${what}`));
    }, timeoutMs);
    done(); // a change between the first check and the watch
  });
}
