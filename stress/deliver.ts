import type { Ledger } from './ledger.js';
import { messageBody } from './message.js';
import { transact } from './transaction.js';
import { codeOf, sourceAddress, Wire } from './wire.js';

/**
 * `count` messages on one connection (1: a legacy MTA without connection caching; more: one that
 * caches, whose transactions reuse ticketbooth's upstream connection), ids `KIND.N.K@stress.test`.
 */
export async function deliver(
  port: number,
  ledger: Ledger,
  kind: string,
  n: number,
  count = 1,
): Promise<{ sent: number; accepted: number; ms: number }> {
  const started = performance.now();
  let sent = 0;
  let accepted = 0;
  let w: Wire | undefined;
  try {
    w = await Wire.open(port, sourceAddress(n));
    if (codeOf(await w.read()) !== 220 || codeOf(await w.cmd('EHLO steady.client.test')) !== 250)
      return { sent, accepted, ms: performance.now() - started };
    for (let k = 0; k < count; k++) {
      const id = `${kind}.${n}.${k}@stress.test`;
      sent++;
      const r = await transact(w, ledger, {
        id,
        kind,
        session: n,
        from: Buffer.from(`m${n}@client.test`),
        rcpts: [Buffer.from(`r${(n + k) % 97}@dest.test`)],
        body: messageBody(id, kind, [`message ${k} of connection ${n}`, 'x'.repeat((n * 31 + k * 17) % 700)]),
      });
      if (r.attempt.outcome !== 'accepted') break;
      accepted++;
    }
    await w.cmd('QUIT');
  } catch {
    // Counted: sent without accepted.
  } finally {
    w?.close();
  }
  return { sent, accepted, ms: performance.now() - started };
}
