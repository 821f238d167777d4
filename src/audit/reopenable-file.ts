import { createWriteStream, existsSync, fstatSync, openSync, renameSync, rmSync, type WriteStream } from 'node:fs';
import winston from 'winston';
import type TransportStream from 'winston-transport';
import { say } from '../util/operator-log.js';

/** winston exports its transport base class as `Transport` at run time; its typings name it `transport`. */
const Transport = (winston as unknown as { Transport: typeof TransportStream }).Transport;

/** How long lines gather before they are written together. */
const FLUSH_MS = 100;

/** winston's key for the formatted line (triple-beam's MESSAGE). */
const MESSAGE = Symbol.for('message');

export interface RotationOptions {
  /** Rotate once the file reaches this many bytes. */
  maxSize?: number;
  /** Rotated files kept: `<file>.1` (newest) to `<file>.<maxFiles>` (default 10). */
  maxFiles?: number;
}

/**
 * A winston transport appending lines to a file that can be rotated without losing a line:
 * - reopen(): logrotate renamed the file and sent SIGHUP; open a new file under the name;
 * - maxSize: past it, rename `file` → `file.1` (older ones shift up) and reopen, logrotate style.
 * Either way the old stream, which already holds every earlier line, is flushed into the renamed
 * file and closed; each line is written to exactly one file, whole.
 * (winston's own File transport rotates by size too, but with a burst of lines its close never
 * finished here, which would hang shutdown.)
 */
export class ReopenableFile extends Transport {
  private stream: WriteStream;
  private size = 0;

  constructor(
    readonly filename: string,
    private readonly rotation: RotationOptions = {},
  ) {
    super();
    this.stream = this.open();
  }

  override log(info: Record<string | symbol, unknown>, next: () => void): void {
    const line = `${String(info[MESSAGE])}\n`;
    const s = this.stream;
    if (s.destroyed || s.errored) {
      // The file failed (full disk, I/O error) and said so once: drop the line rather than wait for
      // a 'drain' that never comes, which would hold every later line in memory and hang shutdown.
      next();
      return;
    }
    // Lines of one flush window leave in one write: a write per line cost ~8% of the proxy's CPU
    // per connection (a thread-pool round trip each). A crash loses at most this window's lines.
    if (s.writableCorked === 0) {
      s.cork();
      setTimeout(() => s.uncork(), FLUSH_MS).unref();
    }
    const ok = s.write(line);
    this.size += Buffer.byteLength(line);
    if (this.rotation.maxSize !== undefined && this.size >= this.rotation.maxSize) this.rotate();
    if (ok) {
      next();
      return;
    }
    if (s.writableCorked > 0) s.uncork(); // a full window goes now, not at the timer
    // Backpressure; a stream ended by a reopen emits no 'drain', but it does close.
    const go = (): void => {
      s.off('drain', go);
      s.off('close', go);
      next();
    };
    s.on('drain', go);
    s.on('close', go);
  }

  async reopen(): Promise<void> {
    const old = this.stream;
    this.stream = this.open();
    await endStream(old);
  }

  /** Ends with the logger: 'finish' comes once the file holds every line (or the file had failed). */
  override _final(callback: (err?: Error | null) => void): void {
    void endStream(this.stream).then(() => callback());
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
