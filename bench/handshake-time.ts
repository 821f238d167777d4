/**
 * Handshake time, full against resumed, side by side in one run (alternating connections):
 * - through the proxy: the upstream handshake as the audit line times it, and what a client sees
 *   (connect to first byte of the reply, through the tunnel);
 * - direct TLS (no proxy), connect to secureConnect, for reference.
 * "Full" is `s_server -tls1_3 -num_tickets 0` (no ticket, so never resumed); "resumed" is
 * `s_server -tls1_3` (renews on every resumption). Same binary, same certificate, same page.
 */
import { connect as connectTcp } from 'node:net';
import { connect as connectTls } from 'node:tls';
import type { HandshakeEvent } from '../src/audit/events.js';
import { makeCert } from '../test/support/certs.js';
import { missing } from '../test/support/interop.js';
import { startSServer, type SServer } from '../test/support/servers.js';
import { isHandshake, startTunnelService, type TunnelHarness } from '../test/support/tunnel-service.js';
import { median, percentile, table, type Figure, type Section } from './section.js';

const N = 200;

/** Client view through the tunnel: ms from connect() to the first byte of the page. */
function firstByte(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let at = 0;
    const s = connectTcp({ host: '127.0.0.1', port });
    s.on('connect', () => s.write('GET / HTTP/1.0\r\n\r\n'));
    s.once('data', () => (at = performance.now() - started));
    s.on('data', () => undefined);
    s.on('error', reject);
    s.on('close', () => (at ? resolve(at) : reject(new Error('no reply'))));
  });
}

/** Direct TLS: ms from connect() to secureConnect, offering `session` if given; returns the next session. */
function directHandshake(server: SServer, ca: string, session?: Buffer): Promise<{ ms: number; resumed: boolean; session?: Buffer }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let ms = 0;
    let resumed = false;
    let next: Buffer | undefined;
    const s = connectTls({ host: server.host, port: server.port, servername: 'localhost', ca, ...(session ? { session } : {}) });
    s.on('secureConnect', () => {
      ms = performance.now() - started;
      resumed = s.isSessionReused();
      s.write('GET / HTTP/1.0\r\n\r\n');
    });
    s.on('session', (der: Buffer) => (next ??= der));
    s.on('data', () => undefined);
    s.on('error', reject);
    s.on('close', () => resolve({ ms, resumed, session: next }));
  });
}

async function lastLine(h: TunnelHarness, count: number): Promise<HandshakeEvent> {
  const lines = (await h.waitFor(isHandshake, count)) as HandshakeEvent[];
  return lines[count - 1];
}

export async function run(): Promise<Section> {
  const name = 'Handshake time: full vs resumed (ms, median and p90)';
  const skip = missing('openssl');
  if (skip) return { name, lines: [`skipped: ${skip}`] };
  const cert = makeCert(['localhost']);
  const fullServer = await startSServer('tls13', cert, ['-num_tickets', '0']);
  const resumedServer = await startSServer('tls13', cert);
  const up = (s: SServer) => ({ host: s.host, port: s.port, servername: 'localhost', ca: cert.certFile });
  const full = await startTunnelService({ name: 'full', upstream: up(fullServer) });
  const resumed = await startTunnelService({ name: 'resumed', upstream: up(resumedServer) });
  const m = { auditFull: [] as number[], auditResumed: [] as number[], clientFull: [] as number[], clientResumed: [] as number[] };
  const direct = { full: [] as number[], resumed: [] as number[] };
  let unexpected = 0;
  try {
    await firstByte(resumed.port); // warm-up: the first resumed-side connection is a full one
    await lastLine(resumed, 1);
    let session: Buffer | undefined;
    for (let i = 0; i < N; i++) {
      m.clientFull.push(await firstByte(full.port));
      const f = await lastLine(full, i + 1);
      m.clientResumed.push(await firstByte(resumed.port));
      const r = await lastLine(resumed, i + 2);
      if (f.resumed || !r.resumed) unexpected++;
      m.auditFull.push(f.handshakeMs);
      m.auditResumed.push(r.handshakeMs);

      const df = await directHandshake(fullServer, cert.cert);
      const dr = await directHandshake(resumedServer, cert.cert, session);
      session = dr.session;
      direct.full.push(df.ms);
      if (dr.resumed) direct.resumed.push(dr.ms);
    }
  } finally {
    await full.stop();
    await resumed.stop();
    await fullServer.stop();
    await resumedServer.stop();
  }
  const fmt = (x: number): string => x.toFixed(2);
  const row = (label: string, f: number[], r: number[]): string[] => [
    label,
    `${fmt(median(f))} / ${fmt(percentile(f, 90))}`,
    `${fmt(median(r))} / ${fmt(percentile(r, 90))}`,
    (median(f) / median(r)).toFixed(2),
  ];
  const figures: Record<string, Figure> = {
    proxyUpstreamFullMs: { value: median(m.auditFull), unit: 'ms' },
    proxyUpstreamResumedMs: { value: median(m.auditResumed), unit: 'ms' },
    proxyUpstreamRatio: { value: median(m.auditFull) / median(m.auditResumed), unit: 'ratio full/resumed' },
    proxyClientFullMs: { value: median(m.clientFull), unit: 'ms' },
    proxyClientResumedMs: { value: median(m.clientResumed), unit: 'ms' },
    proxyClientRatio: { value: median(m.clientFull) / median(m.clientResumed), unit: 'ratio full/resumed' },
    directFullMs: { value: median(direct.full), unit: 'ms' },
    directResumedMs: { value: median(direct.resumed), unit: 'ms' },
    directRatio: { value: median(direct.full) / median(direct.resumed), unit: 'ratio full/resumed' },
  };
  const lines = table(
    ['measure', 'full med / p90', 'resumed med / p90', 'full/resumed'],
    [
      row('proxy: upstream handshake (audit handshakeMs)', m.auditFull, m.auditResumed),
      row('proxy: client connect to first byte', m.clientFull, m.clientResumed),
      row('direct TLS: connect to secureConnect', direct.full, direct.resumed),
    ],
  );
  lines.push(`${N} connections of each kind, alternating; ${unexpected} proxy pair(s) where the server did not behave as expected.`);
  return { name, lines, figures };
}
