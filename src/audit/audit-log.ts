import { EventEmitter } from 'node:events';
import winston from 'winston';
import type { AuditEvent } from './events.js';
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
 * One JSON line per audit event, through winston. Subscribers (metrics) get every event
 * whether or not it is written anywhere.
 */
export class AuditLog extends EventEmitter<{ event: [AuditEvent] }> {
  private readonly logger: winston.Logger;
  private readonly transport: winston.transport;

  constructor(readonly options: AuditOptions = {}) {
    super();
    this.transport = transportFor(options);
    this.logger = winston.createLogger({
      level: 'info',
      format: winston.format.printf((info) => JSON.stringify(info.message)),
      transports: [this.transport],
    });
  }

  record(event: AuditEvent): void {
    const line = { time: new Date().toISOString(), ...event };
    // After close the file is gone: winston would throw "write after end". Subscribers still hear it.
    if (!this.closing) this.logger.info({ message: line });
    this.emit('event', line);
  }

  /** Reopens the file by name (after logrotate renamed it); false when the log is not a reopenable file. */
  async reopen(): Promise<boolean> {
    if (!(this.transport instanceof ReopenableFile)) return false;
    await this.transport.reopen();
    return true;
  }

  private closing?: Promise<void>;

  /** Flushes and closes the file; a second call waits for the first ('finish' fires only once). */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.logger.on('finish', () => resolve());
      this.logger.end();
    });
    return this.closing;
  }
}

function transportFor({ file, maxSize, maxFiles }: AuditOptions): winston.transport {
  if (file === undefined) return new winston.transports.Console({ silent: true });
  if (file === '-') return new winston.transports.Stream({ stream: process.stdout });
  return new ReopenableFile(file, { maxSize, maxFiles });
}
