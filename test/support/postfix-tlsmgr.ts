import { join } from 'node:path';
import { AuditLog } from '../../src/audit/audit-log.js';
import type { AuditEvent } from '../../src/audit/events.js';
import { cacheSchema } from '../../src/config/schema.js';
import { startTlsmgr, type RunningTlsmgr } from '../../src/tlsmgr/command.js';
import { makeCert } from './certs.js';
import { freeLoopbackAddress, freeTcpPort } from './ports.js';
import { sendThroughLegacy } from './postfix-chain.js';
import { startPostfix, tls13Destination, type Postfix } from './postfix.js';

// Postfix → Postfix with Postfix's own TLS; the sending side's session cache is the stock tlsmgr
// or ticketbooth's tlsmgr mode (`tlsmgr_service_name = ticketbooth`).

/** The destination: STARTTLS on TLS 1.3 only, one ticket per full handshake, logs `Reusing old session`. */
export async function startTls13Destination(): Promise<{ dest: Postfix; address: string }> {
  const address = await freeLoopbackAddress(25);
  const dest = await startPostfix({
    smtpd: `${address}:25`,
    maildirDomains: ['dest.test'],
    main: { myhostname: 'mx.dest.test', ...tls13Destination(makeCert(['mx.dest.test'])) },
  });
  return { dest, address };
}

/**
 * The sending Postfix: its own TLS (`may`), one message per connection, one connection at a time,
 * relaying to the destination. With `service`, its session cache is the tlsmgr at
 * `$queue_directory/private/<service>`: the two main.cf lines in docs/tlsmgr.md.
 */
export async function startSender(destAddress: string, service?: string): Promise<{ postfix: Postfix; port: number }> {
  const port = await freeTcpPort();
  const postfix = await startPostfix({
    smtpd: `127.0.0.1:${port}`,
    main: {
      myhostname: 'legacy.client.test',
      relayhost: `[${destAddress}]:25`,
      smtp_tls_security_level: 'may',
      smtp_tls_loglevel: 'summary, cache',
      smtp_connection_cache_on_demand: 'no',
      smtp_destination_concurrency_limit: '1',
      smtp_tls_session_cache_database: 'btree:${data_directory}/smtp_scache',
      ...(service ? { tlsmgr_service_name: service } : {}),
    },
  });
  return { postfix, port };
}

export function queueDir(p: Postfix): string {
  return join(p.dir, 'queue');
}

/** ticketbooth's tlsmgr on the sender's `private/ticketbooth`, forwarding to its real tlsmgr. */
export async function startTicketboothTlsmgr(
  sender: Postfix,
  reuse: 'never' | 'adaptive',
  store: Record<string, unknown> = { type: 'memory' },
): Promise<{ tlsmgr: RunningTlsmgr; events: AuditEvent[] }> {
  const audit = new AuditLog();
  const events: AuditEvent[] = [];
  audit.on('event', (e) => events.push(e));
  const tlsmgr = await startTlsmgr({
    socket: join(queueDir(sender), 'private', 'ticketbooth'),
    forward: join(queueDir(sender), 'private', 'tlsmgr'),
    owner: 'postfix',
    cache: cacheSchema.parse({ reuse, store }),
    audit,
  });
  return { tlsmgr, events };
}

/** Sends `n` messages through the sender, one swaks each; returns their ids. */
export async function sendMessages(port: number, n: number, tag: string): Promise<string[]> {
  const ids = Array.from({ length: n }, (_, i) => `${tag}-${i}-${process.pid}`);
  for (const id of ids) await sendThroughLegacy(port, id);
  return ids;
}

/** The destination's verdicts on the TLS connections logged after `from` (a log offset). */
export function verdicts(dest: Postfix, from: number): { tls: number; resumed: number } {
  const log = dest.log().slice(from);
  return {
    tls: (log.match(/TLS connection established from .*TLSv1\.3/g) ?? []).length,
    resumed: (log.match(/Reusing old session/g) ?? []).length,
  };
}
