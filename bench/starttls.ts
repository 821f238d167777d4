/**
 * Resumption through an SMTP STARTTLS tunnel, counted by the server (`isSessionReused()` on each
 * TLS session it served): a Node SMTP server issues 2 TLS 1.3 tickets per full handshake and none
 * on a resumed one, so strictly single-use tickets resume at most 40 of 60 sequential sessions.
 * Run alone: `node --import tsx bench/run.ts starttls`.
 */
import type { HandshakeEvent } from '../src/audit/events.js';
import { makeCert } from '../test/support/certs.js';
import { missing } from '../test/support/interop.js';
import { startSmtpServer } from '../test/support/servers.js';
import { dial } from '../test/support/smtp-client.js';
import { isHandshake, startTunnelService } from '../test/support/tunnel-service.js';
import { pct, table, type Section } from './section.js';

const SESSIONS = 60;
const GOAL = 39;

export async function run(): Promise<Section> {
  const name = 'Resumption through an SMTP STARTTLS tunnel (server count)';
  const skip = missing('openssl');
  if (skip) return { name, lines: [`skipped: ${skip}`] };
  const cert = makeCert(['localhost']);
  const server = await startSmtpServer({ cert, minVersion: 'TLSv1.3' });
  const h = await startTunnelService({
    upstream: { host: server.host, port: server.port, starttls: 'smtp', servername: 'localhost', ca: cert.certFile },
  });
  try {
    for (let i = 0; i < SESSIONS; i++) {
      const d = await dial(h.port);
      if (d.greeting.code !== 220) throw new Error(`session ${i}: greeting ${d.greeting.code}`);
      await d.cmd('EHLO bench.test');
      await d.cmd('QUIT');
      await d.closed();
    }
    const lines = (await h.waitFor(isHandshake, SESSIONS)) as HandshakeEvent[];
    const failed = lines.filter((e) => e.error !== undefined).length;
    const resumed = server.stats.resumed;
    const met = resumed >= GOAL && failed === 0 && server.stats.tlsSessions === SESSIONS;
    const rows = [
      [
        `${SESSIONS} sequential, Node SMTP server (2 tickets, 0 on resumption), never`,
        String(resumed),
        String(server.stats.tlsSessions),
        pct(resumed, server.stats.tlsSessions),
        `>= ${GOAL} of ${SESSIONS}`,
        met ? 'yes' : 'NO',
      ],
    ];
    const notes = [`audit: ${lines.filter((e) => e.resumed).length} resumed, ${failed} failed`];
    return {
      name,
      lines: [...table(['scenario', 'resumed', 'of', 'share', 'goal', 'met'], rows), ...notes],
      figures: { starttlsNever: { value: resumed, unit: `resumed of ${SESSIONS}`, goal: `>= ${GOAL} of ${SESSIONS}`, met } },
    };
  } finally {
    await h.stop();
    await server.stop();
  }
}
