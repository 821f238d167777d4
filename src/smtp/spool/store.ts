import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, readdir, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { spoolEntrySchema, type SpoolEntry } from './entry.js';

/**
 * The spool directory, flat: `<id>.eml` (a body), `<id>.json` (its entry: the commit point),
 * `<id>.json.tmp` (an entry being written). A body without an entry belongs to a transaction that
 * never committed (all hops answered alike, or the process died before the 250): swept at start.
 */
export class SpoolStore {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /** A new body file, written as the message streams. */
  async newBody(): Promise<BodyFile> {
    const id = `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
    // Append-only ('ax': new file, every write at its end): the body is written in order, chunk by chunk.
    return new BodyFile(id, this.bodyPath(id), await open(this.bodyPath(id), 'ax', 0o600));
  }

  bodyPath(id: string): string {
    return join(this.dir, `${id}.eml`);
  }

  /**
   * Takes responsibility: the body and the entry fsync'ed, the entry renamed into place and the
   * directory fsync'ed (both names durable). Only after this may the client hear 250.
   */
  async commit(entry: SpoolEntry, body: BodyFile): Promise<void> {
    await body.close(true);
    await this.save(entry);
  }

  /** Writes an entry atomically and durably (temporary file, fsync, rename, directory fsync). */
  async save(entry: SpoolEntry): Promise<void> {
    const path = join(this.dir, `${entry.id}.json`);
    const f = await open(`${path}.tmp`, 'w', 0o600);
    try {
      await f.writeFile(JSON.stringify(entry));
      await f.sync();
    } finally {
      await f.close();
    }
    await rename(`${path}.tmp`, path);
    await this.syncDir();
  }

  /** The entries on disk, oldest first; unreadable ones are named, not dropped (an operator looks). */
  async list(): Promise<{ entries: SpoolEntry[]; unreadable: string[] }> {
    const names = (await readdir(this.dir)).filter((n) => n.endsWith('.json')).sort();
    const entries: SpoolEntry[] = [];
    const unreadable: string[] = [];
    for (const n of names) {
      try {
        entries.push(spoolEntrySchema.parse(JSON.parse(await readFile(join(this.dir, n), 'utf8'))));
      } catch {
        unreadable.push(n);
      }
    }
    return { entries, unreadable };
  }

  /** One entry as on disk now; undefined once it is gone. */
  async read(id: string): Promise<SpoolEntry | undefined> {
    const text = await readFile(join(this.dir, `${id}.json`), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    return text === undefined ? undefined : spoolEntrySchema.parse(JSON.parse(text));
  }

  /** Bodies and temporary files no entry owns: left by a transaction that never committed. */
  async sweep(): Promise<number> {
    const names = await readdir(this.dir);
    const owned = new Set(names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)));
    const stray = names.filter((n) => n.endsWith('.json.tmp') || (n.endsWith('.eml') && !owned.has(n.slice(0, -4))));
    for (const n of stray) await rm(join(this.dir, n), { force: true });
    return stray.length;
  }

  /** Done with an entry: the entry first, so a crash between leaves a stray body, never an entry without one. */
  async remove(id: string): Promise<void> {
    await rm(join(this.dir, `${id}.json`), { force: true });
    // Durably gone before anything else happens: a resurrected entry would be notified twice.
    await this.syncDir();
    await rm(this.bodyPath(id), { force: true });
  }

  private async syncDir(): Promise<void> {
    const d = await open(this.dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }
}

/** A body being written: every write awaited (memory stays bounded), closed with or without fsync. */
export class BodyFile {
  private closed = false;

  constructor(
    readonly id: string,
    readonly path: string,
    private readonly file: FileHandle,
  ) {}

  async write(bytes: Buffer): Promise<void> {
    // writeFile writes all of it (write() may stop short).
    await this.file.writeFile(bytes);
  }

  async close(sync: boolean): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (sync) await this.file.sync();
    } finally {
      await this.file.close();
    }
  }

  /** Not needed: every hop answered alike. */
  async discard(): Promise<void> {
    await this.close(false).catch(() => undefined);
    await rm(this.path, { force: true });
  }
}
