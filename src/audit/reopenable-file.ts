import { createWriteStream, existsSync, fstatSync, openSync, renameSync, rmSync, type WriteStream } from 'node:fs';
import { say } from '../util/operator-log.js';
import type { LineSink } from './line-sink.js';

/** How long lines gather before they are written together. */
const FLUSH_MS = 100;
/** Bytes waiting for a slow disk, at most: past it lines are dropped, counted and said (bounded memory). */
const MAX_WAITING = 16 * 1024 * 1024;
const NOTICE_EVERY_MS = 60_000;

export interface RotationOptions {
  /** Rotate once the file reaches this many bytes. */
  maxSize?: number;
  /** Rotated files kept: `<file>.1` (newest) to `<file>.<maxFiles>` (default 10). */
  maxFiles?: number;
}

/**
 * Appends lines to a file that can be rotated without losing a line:
 * - reopen(): logrotate renamed the file and sent SIGHUP; open a new file under the name;
 * - maxSize: past it, rename `file` → `file.1` (older ones shift up) and reopen, logrotate style.
 * Either way the old stream, which already holds every earlier line, is flushed into the renamed
 * file and closed; each line is written to exactly one file, whole.
 */
export class ReopenableFile implements LineSink {
  private stream: WriteStream;
  private size = 0;
  /** Lines dropped because the disk did not take them (see MAX_WAITING). */
  dropped = 0;
  private noticed = 0;

  constructor(
    readonly filename: string,
    private readonly rotation: RotationOptions = {},
  ) {
    this.stream = this.open();
  }

  write(line: string): void {
    const s = this.stream;
    // The file failed (full disk, I/O error) and said so once: drop the line rather than hold it.
    if (s.destroyed || s.errored) return;
    if (s.writableLength > MAX_WAITING) return this.drop();
    // Lines of one flush window leave in one write: a write per line cost ~8% of the proxy's CPU
    // per connection (a thread-pool round trip each). A crash loses at most this window's lines.
    if (s.writableCorked === 0) {
      s.cork();
      setTimeout(() => s.uncork(), FLUSH_MS).unref();
    }
    s.write(line);
    this.size += Buffer.byteLength(line);
    if (this.rotation.maxSize !== undefined && this.size >= this.rotation.maxSize) this.rotate();
    else if (s.writableNeedDrain && s.writableCorked > 0) s.uncork(); // a full window goes now, not at the timer
  }

  private drop(): void {
    this.dropped++;
    if (Date.now() - this.noticed < NOTICE_EVERY_MS) return;
    this.noticed = Date.now();
    say('error', `audit log ${this.filename}: the disk is not keeping up; ${this.dropped} lines dropped so far`);
  }

  async reopen(): Promise<void> {
    const old = this.stream;
    this.stream = this.open();
    await endStream(old);
  }

  /** Resolves once the file holds every line (or the file had failed). */
  close(): Promise<void> {
    return endStream(this.stream);
  }

  /** Shifts `file.N-1` → `file.N` … `file` → `file.1`, then reopens; the old stream finishes into `file.1`. */
  private rotate(): void {
    const keep = this.rotation.maxFiles ?? 10;
    try {
      rmSync(`${this.filename}.${keep}`, { force: true });
      for (let i = keep - 1; i >= 1; i--) {
        if (existsSync(`${this.filename}.${i}`)) renameSync(`${this.filename}.${i}`, `${this.filename}.${i + 1}`);
      }
      renameSync(this.filename, `${this.filename}.1`);
    } catch (err) {
      say('error', `audit log ${this.filename}: rotation failed: ${(err as Error).message}`);
      this.size = 0; // keep writing to the same file rather than retrying on every line
      return;
    }
    this.reopen().catch((err: unknown) => {
      // No new file (out of descriptors or inodes): keep writing to the old stream, now `file.1`.
      say('error', `audit log ${this.filename}: reopen after rotation failed: ${(err as Error).message}`);
      this.size = 0;
    });
  }

  /** Opened synchronously: the file exists once the log or a reopen starts, and a bad path fails at once. */
  private open(): WriteStream {
    let fd: number;
    try {
      fd = openSync(this.filename, 'a');
    } catch (err) {
      throw new Error(`audit.file ${this.filename}: cannot open: ${(err as Error).message}`, { cause: err });
    }
    this.size = fstatSync(fd).size;
    const stream = createWriteStream(this.filename, { fd });
    // A full disk must not stop the proxy: say so once per stream, keep serving.
    stream.once('error', (err) => say('error', `audit log ${this.filename}: ${err.message}`));
    return stream;
  }
}

/** Resolves once the stream has ended or, failed, been destroyed: end() on a destroyed stream never calls back. */
function endStream(s: WriteStream): Promise<void> {
  if (s.destroyed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    s.once('close', () => resolve());
    s.end();
  });
}
