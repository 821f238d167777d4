import { AuditLog } from '../../src/audit/audit-log.js';
import type { AuditEvent, SmtpTransactionEvent } from '../../src/audit/events.js';
import { configSchema } from '../../src/config/schema.js';
import { Service } from '../../src/service/service.js';

export interface Smarthost {
  service: Service;
  port: number;
  events: AuditEvent[];
  transactions(): SmtpTransactionEvent[];
  /** Resolves once `n` smtp.transaction events were written. */
  waitForTransactions(n: number, timeoutMs?: number): Promise<SmtpTransactionEvent[]>;
  /** Resolves once `n` events of this kind were written (e.g. `tls.handshake`, written when the upstream closes). */
  waitForEvents<K extends AuditEvent['event']>(kind: K, n: number, timeoutMs?: number): Promise<Array<Extract<AuditEvent, { event: K }>>>;
  stop(): Promise<void>;
}

/** A ticketbooth with one `type: smtp` listener named `sh` on an ephemeral loopback port. */
export async function startSmarthost(listener: Record<string, unknown>, top: Record<string, unknown> = {}): Promise<Smarthost> {
  const config = configSchema.parse({
    listeners: [{ name: 'sh', type: 'smtp', listen: '127.0.0.1:0', hostname: 'tb.test', ...listener }],
    ...top,
  });
  const audit = new AuditLog();
  const events: AuditEvent[] = [];
  const waiters: Array<() => void> = [];
  audit.on('event', (e) => {
    events.push(e);
    for (const w of waiters.splice(0)) w();
  });
  const service = await Service.start(config, audit);
  const transactions = (): SmtpTransactionEvent[] => events.filter((e): e is SmtpTransactionEvent => e.event === 'smtp.transaction');
  const ofKind = <K extends AuditEvent['event']>(kind: K): Array<Extract<AuditEvent, { event: K }>> =>
    events.filter((e): e is Extract<AuditEvent, { event: K }> => e.event === kind);
  const waitForEvents = async <K extends AuditEvent['event']>(
    kind: K,
    n: number,
    timeoutMs = 10_000,
  ): Promise<Array<Extract<AuditEvent, { event: K }>>> => {
    const deadline = Date.now() + timeoutMs;
    while (ofKind(kind).length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${n} ${kind} events, saw ${ofKind(kind).length}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return ofKind(kind);
  };
  return {
    service,
    port: service.addressOf('sh').port,
    events,
    transactions,
    waitForTransactions: async (n, timeoutMs = 10_000) => {
      await waitForEvents('smtp.transaction', n, timeoutMs);
      return transactions();
    },
    waitForEvents,
    stop: () => service.stop(2000),
  };
}
