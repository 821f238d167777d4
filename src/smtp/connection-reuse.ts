import type { SmtpClient } from '../upstream/smtp-client/client.js';

/**
 * Upstream connection reuse for one client session (Postfix keeps this in smtp_reuse.c): one
 * connection kept between transactions, for the next hop it went to, only while it is clean
 * (open, in step, outside a transaction). Connections let go are closed in the background;
 * `close()` waits for them.
 */
export class ConnectionReuse {
  private spare?: { key: string; client: SmtpClient };
  private readonly closing: Array<Promise<void>> = [];

  /** The kept connection when it goes to `key` and is still usable; a kept one that does not is closed. */
  take(key: string): SmtpClient | undefined {
    const spare = this.spare;
    this.spare = undefined;
    if (spare?.key === key && spare.client.alive) return spare.client;
    if (spare) this.discard(spare.client);
    return undefined;
  }

  /** Keeps `client`, outside a transaction, for the next transaction to `key`; the one kept before is closed. */
  keep(key: string, client: SmtpClient): void {
    if (this.spare) this.discard(this.spare.client);
    this.spare = { key, client };
  }

  /**
   * After a transaction: kept if clean, else closed. `inTransaction`: the next hop still holds the
   * envelope (it refused DATA, or the client abandoned the transaction), so RSET first.
   */
  async release(key: string, client: SmtpClient, inTransaction: boolean): Promise<void> {
    if (inTransaction && client.alive) {
      const r = await client.command('RSET').catch(() => undefined);
      if (r?.code !== 250) {
        this.discard(client);
        return;
      }
    }
    if (client.alive) this.keep(key, client);
    else this.discard(client);
  }

  /** QUIT when still in step, then a graceful close. */
  discard(client: SmtpClient): void {
    this.closing.push(client.quit());
  }

  /** Closes the kept connection; resolves when every connection let go is closed. */
  async close(): Promise<void> {
    if (this.spare) this.discard(this.spare.client);
    this.spare = undefined;
    await Promise.allSettled(this.closing);
  }
}
