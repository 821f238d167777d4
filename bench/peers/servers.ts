/**
 * The TLS servers the bulk and connection measures talk to, each its own process on loopback:
 * - the Node bench server (bench/tls-server-main.ts): `SEND n`, `RECV n`, and `GET` (a one-line
 *   page, `New, TLSv1.3, ...` or `Reused, ...`, then close);
 * - `openssl s_server -WWW` serving a generated file (download);
 * - `openssl s_server` in its default mode with `-quiet`, which writes what it reads to stdout:
 *   a file here, whose size is the upload's byte count (upload).
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CertPair } from '../../test/support/certs.js';
import { freeTcpPort } from '../../test/support/ports.js';
import { startProcess } from '../../test/support/process.js';

export interface Server {
  host: string;
  port: number;
  stop(): Promise<void>;
}

const serverMain = fileURLToPath(new URL('../tls-server-main.ts', import.meta.url));

/** `pid`: the server's process, to charge its CPU (the TLS server's half of each handshake). */
export async function startNodeServer(cert: CertPair): Promise<Server & { pid: number }> {
  const proc = await startProcess(process.execPath, ['--import', 'tsx', serverMain, cert.certFile, cert.keyFile], {
    ready: /listening on (\d+)/,
  });
  return { host: '127.0.0.1', port: Number(proc.ready[1]), pid: proc.child.pid ?? NaN, stop: () => proc.stop() };
}

/** HTTP/1.0 header `s_server -WWW` puts before a file (text/plain for an unknown extension). */
export const WWW_HEADER = 'HTTP/1.0 200 ok\r\nContent-type: text/plain\r\n\r\n';

/** `s_server -WWW -tls1_3` in `dir`, serving a `size`-byte file as `/blob.txt`. */
export async function startSServerDownload(cert: CertPair, dir: string, size: number): Promise<Server & { path: string }> {
  writeFileSync(join(dir, 'blob.txt'), Buffer.alloc(size, 0x61));
  const proc = await startProcess(
    'openssl',
    ['s_server', '-accept', '127.0.0.1:0', '-cert', cert.certFile, '-key', cert.keyFile, '-tls1_3', '-WWW'],
    { ready: /ACCEPT 127\.0\.0\.1:(\d+)/, cwd: dir },
  );
  return { host: '127.0.0.1', port: Number(proc.ready[1]), path: '/blob.txt', stop: () => proc.stop() };
}

export interface Sink extends Server {
  /** Bytes received since the last reset (the sink file's size). */
  received(): number;
  reset(): void;
}

/**
 * `s_server -tls1_3 -quiet` writing what it reads to `dir/sink.bin`. Its stdin is a pipe held open:
 * at EOF on stdin it would spin. `-quiet` prints no `ACCEPT` line, so it gets a port picked here and
 * is ready once the kernel lists that port as listening.
 */
export async function startSServerUpload(cert: CertPair, dir: string): Promise<Sink> {
  const file = join(dir, 'sink.bin');
  for (let attempt = 0; ; attempt++) {
    const port = await freeTcpPort();
    const out = openSync(file, 'a');
    const child = spawn(
      'openssl',
      ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', cert.certFile, '-key', cert.keyFile, '-tls1_3', '-quiet'],
      {
        stdio: ['pipe', out, 'pipe'],
      },
    );
    closeSync(out);
    let err = '';
    child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const stop = async (): Promise<void> => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    };
    const up = await until(() => listening(port) || child.exitCode !== null, 10_000);
    if (up && child.exitCode === null) {
      truncateSync(file, 0);
      return { host: '127.0.0.1', port, received: () => statSync(file).size, reset: () => truncateSync(file, 0), stop };
    }
    await stop();
    if (attempt >= 3) throw new Error(`openssl s_server (sink) did not listen on ${port}: ${err}`);
  }
}

/** Whether /proc/net/tcp lists a socket listening on 127.0.0.1:`port`. */
function listening(port: number): boolean {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .some((l) => {
      const f = l.trim().split(/\s+/);
      return f[1] === local && f[3] === '0A';
    });
}

/** Polls a condition another process will meet (bounded); resolves whether it was met. */
export async function until(done: () => boolean, timeoutMs: number, everyMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return true;
}
