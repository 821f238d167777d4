import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import type { HandshakeEvent } from '../../src/audit/events.js';
import { startPostfix, type Postfix } from './postfix.js';
import type { Smarthost } from './smarthost.js';

const run = promisify(execFile);

// The legacy-client side of the Postfix end-to-end tests: a Postfix configured with the README's
// snippet relays to ticketbooth, swaks feeds it, and the destination's maildir is read back.

/** An examples/mta/ Postfix snippet (the README's) as main.cf settings, as Postfix reads them: whole lines, `#` lines skipped. */
export function readmePostfixLines(relayPort: number, file = 'postfix-main.cf'): Record<string, string> {
  const text = readFileSync(new URL(`../../examples/mta/${file}`, import.meta.url), 'utf8');
  const lines = text.replaceAll('{{TICKETBOOTH_PORT}}', String(relayPort)).split('\n');
  return Object.fromEntries(
    lines.filter((l) => l.trim() !== '' && !l.startsWith('#')).map((l) => l.split(/\s*=\s*/, 2) as [string, string]),
  );
}

/** The legacy MTA: relays everything to ticketbooth in cleartext, one connection per message. */
export async function startLegacyClient(port: number, relayPort: number, concurrency: number): Promise<Postfix> {
  return startPostfix({
    smtpd: `127.0.0.1:${port}`,
    main: {
      myhostname: 'legacy.client.test',
      ...readmePostfixLines(relayPort),
      smtp_connection_cache_on_demand: 'no',
      smtp_destination_concurrency_limit: String(concurrency),
    },
  });
}

/** Each message id (`<id@legacy.test>`) in exactly one delivered file. */
export function assertEachOnce(files: string[], ids: string[]): void {
  const seen = files.map((f) => /^Message-Id: <([^>]+)>/im.exec(readFileSync(f, 'utf8'))?.[1]).sort();
  assert.deepEqual(seen, ids.map((id) => `${id}@legacy.test`).sort(), 'each message exactly once');
}

/** Resolves once `n` tls.handshake lines were written (each when its upstream connection closed). */
export async function waitForHandshakes(sh: Smarthost, n: number, timeoutMs = 10_000): Promise<HandshakeEvent[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const handshakes = sh.events.filter((e): e is HandshakeEvent => e.event === 'tls.handshake');
    if (handshakes.length >= n) return handshakes;
    if (Date.now() > deadline) throw new Error(`expected ${n} tls.handshake lines, saw ${handshakes.length}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** One message into the legacy Postfix with swaks, its Message-Id `<id@legacy.test>`; `to`: recipients, comma-separated. */
export async function sendThroughLegacy(port: number, id: string, to = 'user@dest.test'): Promise<void> {
  await run('swaks', [
    ...['--server', '127.0.0.1', '--port', String(port), '--from', 'sender@legacy.test', '--to', to],
    ...['--header', `Message-Id: <${id}@legacy.test>`, '--header', `Subject: ${id}`, '--body', `body of ${id}`],
  ]);
}
