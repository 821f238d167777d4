import { createReadStream, openSync, readSync, closeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

/** A file that could not be read to its end (missing, unreadable, a cut-off .gz): reported, not fatal. */
export interface InputProblem {
  source: string;
  error: string;
}

/**
 * The lines of each source in the order given (rotated files: oldest first if you want the time
 * charts in order; the figures do not depend on it), `-` or no source meaning stdin. Gzip is
 * recognised by its magic bytes, so `audit.log.2.gz` and a renamed one both work. One line in
 * memory at a time (readline over a stream).
 */
export async function* readLines(sources: readonly string[], problems: InputProblem[]): AsyncGenerator<string> {
  for (const source of sources.length === 0 ? ['-'] : sources) {
    let input: Readable;
    try {
      input = open(source);
    } catch (err) {
      problems.push({ source, error: (err as Error).message });
      continue;
    }
    const lines = createInterface({ input, crlfDelay: Infinity });
    try {
      for await (const line of lines) yield line;
    } catch (err) {
      problems.push({ source, error: (err as Error).message });
    } finally {
      lines.close();
      input.destroy();
    }
  }
}

function open(source: string): Readable {
  if (source === '-') return process.stdin;
  const gzip = isGzip(source);
  const raw = createReadStream(source, { fd: openSync(source, 'r'), highWaterMark: 256 * 1024 });
  if (!gzip) return raw;
  const gunzip = createGunzip();
  raw.on('error', (err) => gunzip.destroy(err));
  return raw.pipe(gunzip);
}

function isGzip(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const magic = Buffer.alloc(2);
    return readSync(fd, magic, 0, 2, 0) === 2 && magic[0] === 0x1f && magic[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
}
