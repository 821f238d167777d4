import { EventEmitter } from 'node:events';
import type { AuditEvent } from './events.js';
import { stdoutSink, type LineSink } from './line-sink.js';
import { ReopenableFile } from './reopenable-file.js';

export interface AuditOptions {
  /** A file path, `-` for stdout, or undefined for no log (events still reach subscribers). */
  file?: string;
  /** Size-based rotation: past this many bytes `file` becomes `file.1` (older ones shift up). */
  maxSize?: number;
  /** With maxSize: rotated files kept (default 10). */
  maxFiles?: number;
}

/**
 * One JSON line per audit event. Subscribers (metrics) get every event whether or not it is
 * written anywhere. The line is made when the event is recorded: later changes to the event
 * object cannot reach it.
 */
export class AuditLog extends EventEmitter<{ event: [AuditEvent] }> {
  private readonly sink: LineSink | undefined;
  /** Lines still being made (waiting on the store): closing waits for them. */
  private readonly pending = new Set<Promise<unknown>>();

  constructor(readonly options: AuditOptions = {}) {
    super();
    this.sink = sinkFor(options);
  }

  /** Holds a line being made until it is recorded: `close()` waits for it. Returns `making`. */
  hold<T>(making: Promise<T>): Promise<T> {
    this.pending.add(making);
    const forget = (): void => void this.pending.delete(making);
    making.then(forget, forget);
    return making;
  }

  record(event: AuditEvent): void {
    this.accept({ time: new Date().toISOString(), ...event });
  }

  /** An event already timed where it happened (a worker's, written by its primary). */
  accept(line: AuditEvent): void {
    // After close the file is gone; subscribers still hear it.
    if (this.sink && !this.closed) this.sink.write(`${JSON.stringify(line)}\n`);
    this.emit('event', line);
  }

  /** Lines the file dropped because the disk did not take them in time. */
  get dropped(): number {
    return this.sink?.dropped ?? 0;
  }

  /** Reopens the file by name (after logrotate renamed it); false when the log is not a reopenable file. */
  async reopen(): Promise<boolean> {
    if (!this.sink?.reopen) return false;
    await this.sink.reopen();
    return true;
  }

  private closing?: Promise<void>;
  private closed = false;

  /** Waits for the lines held, then flushes and closes the file; a second call waits for the first. */
  close(): Promise<void> {
    this.closing ??= this.finish();
    return this.closing;
  }

  private async finish(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
    this.closed = true;
    await this.sink?.close();
  }
}

function sinkFor({ file, maxSize, maxFiles }: AuditOptions): LineSink | undefined {
  if (file === undefined) return undefined;
  if (file === '-') return stdoutSink;
  return new ReopenableFile(file, { maxSize, maxFiles });
}
