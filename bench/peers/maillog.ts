/**
 * Postfix's log read from an offset (the whole file grows by megabytes over a section): counts of
 * the lines one run left, once Postfix (postlogd, asynchronous) has written them all.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { until } from './servers.js';

export class MailLog {
  private offset: number;
  private text = '';

  constructor(private readonly file: string) {
    this.offset = size(file);
  }

  /** Forgets what was read: counts start again from here. */
  mark(): void {
    this.offset = size(this.file);
    this.text = '';
  }

  count(re: RegExp): number {
    this.read();
    return (this.text.match(new RegExp(re.source, 'g')) ?? []).length;
  }

  /** Resolves once `re` matched `n` times since the mark (false after `timeoutMs`). */
  waitFor(re: RegExp, n: number, timeoutMs = 30_000): Promise<boolean> {
    return until(() => this.count(re) >= n, timeoutMs);
  }

  private read(): void {
    const end = size(this.file);
    if (end <= this.offset) return;
    const buf = Buffer.alloc(end - this.offset);
    const fd = openSync(this.file, 'r');
    try {
      readSync(fd, buf, 0, buf.length, this.offset);
    } finally {
      closeSync(fd);
    }
    this.offset = end;
    this.text += buf.toString('latin1');
  }
}

function size(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}
