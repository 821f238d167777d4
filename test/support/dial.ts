import { AuditLog } from '../../src/audit/audit-log.js';
import type { HandshakeEvent } from '../../src/audit/events.js';
import type { ResumptionCache } from '../../src/resumption/policy.js';
import { dialTls, type DialContext } from '../../src/upstream/tls-dialer.js';
import type { TlsTarget } from '../../src/upstream/tls-target.js';
import { isHandshake } from './tunnel-service.js';
import { parseVerdict } from './www-client.js';

export interface DialResult {
  /** The server's verdict from its `-www` page; undefined when the dial failed. */
  verdict?: 'New' | 'Reused';
  error?: string;
  /** The dialer's audit line for this connection. */
  event: HandshakeEvent;
}

/**
 * The upstream dialer without a listener: dial, `GET /`, read the server's verdict, and return it
 * with the `tls.handshake` audit line. One at a time (the audit line is matched by order).
 */
export class Dialer {
  readonly audit = new AuditLog();
  readonly events: HandshakeEvent[] = [];
  readonly ctx: DialContext;

  constructor(cache: ResumptionCache, listener = 'test') {
    this.ctx = { listener, cache, audit: this.audit };
    this.audit.on('event', (e) => {
      if (isHandshake(e)) this.events.push(e);
    });
  }

  async get(target: TlsTarget): Promise<DialResult> {
    const n = this.events.length;
    let verdict: DialResult['verdict'];
    let error: string | undefined;
    try {
      const up = await dialTls(target, this.ctx);
      const chunks: Buffer[] = [];
      up.socket.on('data', (c: Buffer) => chunks.push(c));
      up.socket.write('GET / HTTP/1.0\r\n\r\n');
      await new Promise<void>((resolve) => up.socket.once('close', () => resolve()));
      verdict = parseVerdict(Buffer.concat(chunks).toString()).verdict;
    } catch (err) {
      error = (err as Error).message;
    }
    while (this.events.length === n) await new Promise<void>((resolve) => this.audit.once('event', () => resolve()));
    return { verdict, error, event: this.events[this.events.length - 1] };
  }

  close(): Promise<void> {
    return this.audit.close();
  }
}
