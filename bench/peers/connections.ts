/**
 * Connection setup: each connection connects (to the forwarder, or with TLS straight to the
 * server for the bare client), sends `GET /`, reads the Node bench server's one-line page to its
 * close. 500 one after another, then 2,000 with 32 in flight; the contenders take turns rep by rep.
 * Latency is connect to the end of the reply. The page says whether the server resumed the
 * upstream TLS session (`Reused`) or not (`New`): that is the resumed count.
 *
 * The bare Node TLS client (a process of its own, on ticketbooth's runtime and flags) makes the
 * same upstream handshakes a forwarder makes, each ticket offered once: the floor a forwarder on
 * Node can reach. Ticketbooth and the bare client run twice, on Node's default groups (hybrid
 * post-quantum first) and on X25519 alone: what stunnel's OpenSSL 3.0 does, so like for like.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as connectTls } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCert } from '../../test/support/certs.js';
import { missing } from '../../test/support/interop.js';
import { median, percentile, table, type Figure, type Section } from '../section.js';
import { ensureBuilt } from './build.js';
import {
  startBareClient,
  startStunnel,
  startTicketboothTunnel,
  startTicketboothTunnelServe,
  type Forwarder,
  type Upstream,
  upstreamOf,
} from './contenders.js';
import { charged } from './cpu.js';
import { fixed, goalFigure, plainFigure, ratioCell, type Goal } from './figures.js';
import { interleave, pairedRatio, REPS } from './interleave.js';
import { load, type LoadResult } from './load.js';
import { viaForwarder } from './routes.js';
import { startNodeServer } from './servers.js';

const CONTENDERS = ['ticketbooth', 'bare', 'stunnel', 'tbX25519', 'bareX25519'] as const;
type Contender = (typeof CONTENDERS)[number];
const LABELS: Record<Contender, string> = {
  ticketbooth: 'ticketbooth',
  bare: 'bare Node',
  stunnel: 'stunnel',
  tbX25519: 'tb X25519',
  bareX25519: 'bare X25519',
};
const LOADS = [
  { id: 'sequential', label: 'sequential', count: 500, inFlight: 1 },
  { id: 'inflight32', label: '32 in flight', count: 2000, inFlight: 32 },
] as const;
const WARM_UP = 100;
type Measure = 'rate' | 'p50' | 'cpuMs';

/** The ratios shown, `a` over `b` on the same load, each with its goal per measure (the issue's checks). */
const RATIOS = [
  { id: 'tb_over_bare', label: 'tb/bare', a: 'ticketbooth', b: 'bare', goals: { cpuMs: { atMost: 1.15 } } },
  {
    id: 'tb_over_stunnel',
    label: 'tb/stunnel',
    a: 'ticketbooth',
    b: 'stunnel',
    goals: { rate: { atLeast: 1.0 }, p50: { atMost: 1.1 }, cpuMs: { atMost: 1.0 } },
  },
  { id: 'tbx_over_barex', label: 'X: tb/bare', a: 'tbX25519', b: 'bareX25519', goals: { cpuMs: { atMost: 1.15 } } },
  {
    id: 'tbx_over_stunnel',
    label: 'X: tb/stunnel',
    a: 'tbX25519',
    b: 'stunnel',
    goals: { rate: { atLeast: 1.0 }, p50: { atMost: 1.1 }, cpuMs: { atMost: 1.2 } },
  },
] as const satisfies ReadonlyArray<{ id: string; label: string; a: Contender; b: Contender; goals: Partial<Record<Measure, Goal>> }>;

interface Sample {
  rate: number;
  p50: number;
  cpuMs: number;
  resumed: number;
  count: number;
}

interface Runner {
  pid: number;
  load(count: number, inFlight: number): Promise<LoadResult>;
  stop(): Promise<void>;
}

/** The key exchange group a Node TLS client (ticketbooth's runtime) gets from the server. */
function keyExchange(up: Upstream): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectTls({ host: up.host, port: up.port, servername: up.servername, ca: up.cert.cert }, () => {
      const info = socket.getEphemeralKeyInfo() as { name?: string } | null;
      resolve(info?.name ?? 'an unknown group');
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

async function startAll(dir: string, up: Upstream): Promise<{ runners: Record<Contender, Runner>; stunnelOpenssl: string }> {
  const forwarder = (f: Forwarder): Runner => {
    const route = viaForwarder(f);
    return { pid: f.pid, load: (count, inFlight) => load(route, count, inFlight), stop: () => f.stop() };
  };
  const st = await startStunnel(up);
  const runners: Record<Contender, Runner> = {
    ticketbooth: forwarder(await startTicketboothTunnel(dir, up)),
    bare: await startBareClient(up),
    stunnel: forwarder(st),
    tbX25519: forwarder(await startTicketboothTunnelServe(dir, up, { groups: 'X25519' })),
    bareX25519: await startBareClient(up, 'X25519'),
  };
  return { runners, stunnelOpenssl: st.openssl };
}

async function sample(r: Runner, count: number, inFlight: number): Promise<Sample> {
  const { result, cpu } = await charged(r.pid, () => r.load(count, inFlight));
  return {
    rate: count / result.seconds,
    p50: percentile(
      result.replies.map((x) => x.ms),
      50,
    ),
    cpuMs: (1000 * cpu) / count,
    resumed: result.replies.filter((x) => x.reused).length,
    count,
  };
}

/** The table rows and figures of one load. */
function report(l: (typeof LOADS)[number], got: Record<Contender, Sample[]>, rows: string[][], figures: Record<string, Figure>): string {
  const of = (k: Contender, f: keyof Sample): number[] => got[k].map((s) => s[f]);
  const measure = (label: string, f: Measure, unit: string, digits: number): void => {
    const key = `${l.id}_${f}`;
    for (const k of CONTENDERS) figures[`${key}_${k}`] = plainFigure(median(of(k, f)), unit);
    const cells = RATIOS.map((r) => {
      const ratio = pairedRatio(of(r.a, f), of(r.b, f));
      const goal: Goal | undefined = (r.goals as Partial<Record<Measure, Goal>>)[f];
      figures[`${key}_${r.id}`] = goal ? goalFigure(ratio, 'ratio', goal) : plainFigure(ratio, 'ratio');
      return ratioCell(ratio, goal);
    });
    rows.push([`${label}, ${l.label}`, ...CONTENDERS.map((k) => fixed(median(of(k, f)), digits)), ...cells]);
  };
  measure('connections/s', 'rate', 'conn/s', 0);
  measure('p50 latency ms', 'p50', 'ms', 2);
  measure('CPU ms/connection', 'cpuMs', 'CPU ms/conn', 3);
  // What the post-quantum key share costs: default groups over X25519 alone, same client.
  for (const [id, a, b] of [
    ['tb', 'ticketbooth', 'tbX25519'],
    ['bare', 'bare', 'bareX25519'],
  ] as const) {
    figures[`${l.id}_cpuMs_pq_over_x25519_${id}`] = plainFigure(pairedRatio(of(a, 'cpuMs'), of(b, 'cpuMs')), 'ratio');
  }
  const share = (k: Contender): string => {
    const r = of(k, 'resumed').reduce((a, b) => a + b, 0);
    const n = of(k, 'count').reduce((a, b) => a + b, 0);
    return `${LABELS[k]} ${((100 * r) / n).toFixed(0)}%`;
  };
  return `upstream handshakes resumed (server's verdict), ${l.label}: ${CONTENDERS.map(share).join(', ')}`;
}

export async function run(): Promise<Section> {
  const name = `Peers, connection setup: ticketbooth vs a bare Node TLS client vs stunnel to the Node bench server, TLS 1.3 (median of ${REPS} interleaved reps)`;
  const skip = missing('openssl', 'stunnel4');
  if (skip) return { name, lines: [`skipped: ${skip}`] };
  const built = await ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'tb-bench-peers-conn-'));
  const running: { stop(): Promise<void> }[] = [];
  try {
    const cert = makeCert(['localhost'], dir);
    const server = await startNodeServer(cert);
    running.push(server);
    const up = upstreamOf(server, cert);
    const { runners, stunnelOpenssl } = await startAll(dir, up);
    running.push(...Object.values(runners));
    for (const k of CONTENDERS) await runners[k].load(WARM_UP, 1);
    const group = await keyExchange(up);
    const rows: string[][] = [];
    const figures: Record<string, Figure> = {};
    const resumedRows: string[] = [];
    for (const l of LOADS) {
      const got = await interleave(CONTENDERS, REPS, (k) => sample(runners[k], l.count, l.inFlight));
      resumedRows.push(report(l, got, rows, figures));
    }
    const pq = (id: string): string =>
      `${fixed(figures[`sequential_cpuMs_pq_over_x25519_${id}`].value, 2)}x / ${fixed(figures[`inflight32_cpuMs_pq_over_x25519_${id}`].value, 2)}x`;
    return {
      name,
      lines: [
        ...table(['measure', ...CONTENDERS.map((k) => LABELS[k]), ...RATIOS.map((r) => r.label)], rows),
        'Goals (! = not met): CPU tb/bare <= 1.15x; tb/stunnel on the same groups (X: both X25519) CPU <= 1.2x, conn/s >= 1x, p50 <= 1.1x. Ratios: median of per-rep ratios.',
        "CPU: utime+stime of the process doing the TLS (the forwarder; the bare client's own process).",
        ...resumedRows,
        `post-quantum key share, CPU per connection on default groups over X25519 alone (sequential / 32 in flight): ticketbooth ${pq('tb')}, bare client ${pq('bare')}.`,
        `key exchange: ticketbooth and the bare client run on Node ${process.versions.node} (OpenSSL ${process.versions.openssl}) and get ${group} from the Node server on default groups; stunnel runs on ${stunnelOpenssl} (X25519).`,
        `the bare client keeps 8 tickets and offers each once, newest first, as ticketbooth's cache does; the Node server issues 2 per full handshake and none on resumption. ${built}.`,
      ],
      figures,
    };
  } finally {
    for (const r of running.reverse()) await r.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}
