import { EventEmitter } from 'node:events';
import winston from 'winston';
import type { AuditEvent } from './events.js';

export interface AuditOptions {
  /** A file path, `-` for stdout, or undefined for no log (events still reach subscribers). */
  file?: string;
}

/**
 * One JSON line per audit event, through winston. Subscribers (metrics) get every event
 * whether or not it is written anywhere.
 */
export class AuditLog extends EventEmitter<{ event: [AuditEvent] }> {
  private readonly logger: winston.Logger;

  constructor(readonly options: AuditOptions = {}) {
    super();
    this.logger = winston.createLogger({
      level: 'info',
      format: winston.format.printf((info) => JSON.stringify(info.message)),
      transports: [transportFor(options.file)],
    });
  }

  record(event: AuditEvent): void {
    const line = { time: new Date().toISOString(), ...event };
    this.logger.info({ message: line });
    this.emit('event', line);
  }

  /** Flushes and closes the file. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.logger.on('finish', () => resolve());
      this.logger.end();
    });
  }
}

function transportFor(file: string | undefined): winston.transport {
  if (file === undefined) return new winston.transports.Console({ silent: true });
  if (file === '-') return new winston.transports.Stream({ stream: process.stdout });
  return new winston.transports.File({ filename: file });
}
