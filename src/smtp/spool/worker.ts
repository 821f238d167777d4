import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { AuditLog } from '../../audit/audit-log.js';
import type { SmtpSpoolEvent } from '../../audit/events.js';
import { say } from '../../util/operator-log.js';
import { wants } from './dsn-words.js';
import { buildDsn, dsnIs8bit, headerSection } from './dsn.js';
import type { SpoolEntry, SpoolRecipient } from './entry.js';
import { resubmit, type Submission } from './resubmit.js';
import type { BodyFile, SpoolStore } from './store.js';

export interface SpoolWorkerOptions {
  listener: string;
  hostname: string;
  retryMs: number;
  maxAgeMs: number;
  /** The listener's own address, read when needed (it may be bound after the worker is built). */
  submitTo: () => Submission;
  audit: AuditLog;
  /** Wall-clock ms: retry times are kept on disk across restarts. */
  now?: () => number;
}

/** Entries being worked on in this process: after a reload, two listeners' workers share a directory. */
const claimed = new Set<string>();

/**
 * Works the spool: each pending recipient is handed to the listener again (its own routing, TLS
 * policy and audit) every `retryMs` until `maxAgeMs` after the message arrived; then, for the
 * recipients that finally failed, one delivery status notification to the envelope sender (none
 * for the null sender), also through the listener, from the null sender. Every change is saved
 * before the next step, so a restart resumes where the last one stopped.
 */
export class SpoolWorker {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  /** Entries being worked on outside a pass (a new one, at once): awaited by stop. */
  private readonly working = new Set<Promise<void>>();
  private readonly now: () => number;

  constructor(
    readonly store: SpoolStore,
    private readonly opts: SpoolWorkerOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  /** Sweeps what no committed entry owns, then resumes every entry found, then a pass every `retryMs`. */
  start(): void {
    this.running = (async () => {
      await this.store.sweep();
      const { entries } = await this.store.list();
      for (const e of entries) this.event(e, 'resumed', e.recipients.filter((r) => r.state !== 'delivered').length);
      if (entries.length) say('info', `${this.opts.listener}: spool ${this.store.dir}: resuming ${entries.length} held message(s)`);
      await this.pass();
    })()
      .catch((err: unknown) => say('error', `${this.opts.listener}: spool ${this.store.dir}: ${String(err)}`))
      .finally(() => this.schedule());
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    await Promise.all([...this.working]);
  }

  /**
   * Takes responsibility for `recipients` of a message whose body streamed into `body`: the entry
   * committed (fsync'ed) before this resolves, so the client may then hear 250. Its final
   * failures are notified at once, its temporary ones retried after `retryMs`.
   */
  async hold(
    body: BodyFile,
    env: Pick<SpoolEntry, 'from' | 'smtputf8' | 'body' | 'requireTls' | 'tlsRequiredNo' | 'dsn'>,
    recipients: SpoolRecipient[],
  ): Promise<SpoolEntry> {
    const now = this.now();
    const e: SpoolEntry = {
      version: 1,
      id: body.id,
      listener: this.opts.listener,
      created: now,
      ...env,
      recipients,
      nextAttempt: now + this.opts.retryMs,
      notified: false,
    };
    await this.store.commit(e, body);
    this.event(e, 'held', recipients.length);
    say(
      recipients.some((r) => r.state !== 'relayed') ? 'warn' : 'info',
      `${this.opts.listener}: spool ${e.id}: holding a message for ${recipients.length} recipient(s) whose next hop refused it after another took it, or that are owed a "relayed" notification: ${recipients[0]?.reply ?? ''}`,
    );
    const w = this.work(e.id).finally(() => this.working.delete(w));
    this.working.add(w);
    return e;
  }

  /** One pass over every entry on disk. */
  async pass(): Promise<void> {
    const { entries, unreadable } = await this.store.list();
    for (const n of unreadable) say('error', `${this.opts.listener}: spool ${this.store.dir}/${n} cannot be read; left for an operator`);
    for (const e of entries) if (!this.stopped) await this.work(e.id);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.pass()
        .catch((err: unknown) => say('error', `${this.opts.listener}: spool ${this.store.dir}: ${String(err)}`))
        .finally(() => this.schedule());
    }, this.opts.retryMs);
    this.timer.unref();
  }

  /** One entry, read afresh once claimed: a copy listed earlier may be stale (already notified, removed). */
  private async work(id: string): Promise<void> {
    const key = `${this.store.dir}/${id}`;
    if (claimed.has(key)) return;
    claimed.add(key);
    try {
      const e = await this.store.read(id);
      if (e) await this.advance(e);
    } catch (err) {
      say('error', `${this.opts.listener}: spool ${id}: ${String(err)}`);
    } finally {
      claimed.delete(key);
    }
  }

  private async advance(e: SpoolEntry): Promise<void> {
    const now = this.now();
    const pending = e.recipients.filter((r) => r.state === 'pending');
    if (pending.length > 0 && now >= e.nextAttempt) {
      e.nextAttempt = now + this.opts.retryMs;
      // Saved after each: a restart never sends again what a next hop already took.
      for (const r of pending) {
        await this.retry(e, r);
        await this.store.save(e);
      }
    }
    if (this.now() - e.created >= this.opts.maxAgeMs) {
      for (const r of e.recipients.filter((x) => x.state === 'pending')) {
        r.state = 'failed';
        this.event(e, 'failed', 1, undefined, `given up after ${Math.round(this.opts.maxAgeMs / 1000)} s: ${r.reply}`);
      }
    }
    if (e.recipients.some((r) => r.state === 'pending')) return;
    e.finalAt ??= this.now();
    if (!e.notified) await this.notify(e);
    if (e.notified) await this.store.remove(e.id);
    else await this.store.save(e);
  }

  /** One pending recipient, handed to the listener again. */
  private async retry(e: SpoolEntry, r: SpoolRecipient): Promise<void> {
    const env = {
      from: e.from,
      to: r.address,
      smtputf8: e.smtputf8,
      requireTls: e.requireTls === true,
      tlsRequiredNo: e.tlsRequiredNo === true,
      ...(e.body ? { body: e.body } : {}),
      ...(e.dsn ? { mailDsn: e.dsn.words } : {}),
      ...(r.dsn ? { rcptDsn: r.dsn.words } : {}),
    };
    const o = await resubmit(this.opts.submitTo(), env, createReadStream(this.store.bodyPath(e.id)));
    r.attempts++;
    r.reply = o.reply;
    if (o.code < 300) r.state = 'delivered';
    else if (o.code >= 500) r.state = 'failed';
    this.event(e, o.code < 300 ? 'delivered' : o.code >= 500 ? 'failed' : 'deferred', 1, o.code, o.code < 300 ? undefined : o.reply);
    if (r.state === 'failed') say('warn', `${this.opts.listener}: spool ${e.id}: a recipient failed for good: ${o.reply}`);
  }

  /** The notification for what finally failed (none owed for the null sender or when all went). */
  private async notify(e: SpoolEntry): Promise<void> {
    // NOTIFY (RFC 3461 4.1): a failure only where it asks for FAILURE (or says nothing); relayed ones asked for SUCCESS.
    const failed = e.recipients.filter((r) => (r.state === 'failed' && wants(r.dsn, 'FAILURE')) || r.state === 'relayed');
    if (failed.length === 0 || e.from === '') {
      e.notified = true;
      return;
    }
    const headers = headerSection(await readStart(this.store.bodyPath(e.id)));
    const dsn = buildDsn({
      hostname: this.opts.hostname,
      to: e.from,
      arrived: e.created,
      now: new Date(this.now()),
      failed,
      headers,
      ...(e.dsn?.envid !== undefined ? { envid: e.dsn.envid } : {}),
    });
    const o = await resubmit(
      this.opts.submitTo(),
      // RFC 8689 5: a notification quoting a REQUIRETLS message's headers is sent with REQUIRETLS too.
      {
        from: '',
        to: e.from,
        smtputf8: e.smtputf8,
        requireTls: e.requireTls === true,
        ...(dsnIs8bit(headers) ? { body: '8BITMIME' as const } : {}),
      },
      [dotStuffed(dsn)],
    );
    if (o.code < 300) {
      e.notified = true;
      this.event(e, 'notified', failed.length, o.code);
      say('info', `${this.opts.listener}: spool ${e.id}: delivery status notification sent for ${failed.length} recipient(s)`);
    } else if (o.code >= 500 || this.now() - e.finalAt! >= this.opts.maxAgeMs) {
      // Nowhere left to report to (a notification never bounces): the operator hears of it.
      e.notified = true;
      this.event(e, 'notify-failed', failed.length, o.code, o.reply);
      say('error', `${this.opts.listener}: spool ${e.id}: the delivery status notification could not be sent: ${o.reply}`);
    } else {
      this.event(e, 'deferred', failed.length, o.code, `notification: ${o.reply}`);
    }
  }

  private event(e: SpoolEntry, action: SmtpSpoolEvent['action'], recipients: number, code?: number, error?: string): void {
    this.opts.audit.record({
      event: 'smtp.spool',
      listener: this.opts.listener,
      id: e.id,
      action,
      recipients,
      ...(code !== undefined ? { code } : {}),
      ...(error !== undefined ? { error } : {}),
    });
  }
}

/** The first 64 KiB of a body: enough for its header section. */
async function readStart(path: string): Promise<Buffer> {
  const f = await open(path, 'r');
  try {
    const buf = Buffer.alloc(65536);
    const { bytesRead } = await f.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await f.close();
  }
}

/** RFC 5321 4.5.2: a line that starts with a dot gets another. */
function dotStuffed(message: Buffer): Buffer {
  return Buffer.from(message.toString('latin1').replace(/(^|\r\n)\./g, '$1..'), 'latin1');
}
