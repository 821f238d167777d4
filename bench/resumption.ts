/**
 * Resumption through a ticketbooth tunnel, judged by the servers themselves (the `-www` page says
 * `New` or `Reused`). Each scenario gets a fresh server and a fresh ticketbooth (empty cache).
 * Run alone: `node --import tsx bench/run.ts resumption`.
 */
import type { HandshakeEvent } from '../src/audit/events.js';
import { makeCert, type CertPair } from '../test/support/certs.js';
import { missing } from '../test/support/interop.js';
import { startHaproxy, startNodeTlsServer, startSServer, verdictPlain, type SServerMode } from '../test/support/servers.js';
import { isHandshake, startTunnelService } from '../test/support/tunnel-service.js';
import { pct, table, type Figure, type Section } from './section.js';

interface Upstream {
  host: string;
  port: number;
  stop(): Promise<void>;
}

interface Outcome {
  /** Server verdicts per connection, in order (rounds flattened). */
  reused: boolean[];
  /** Connections where the audit line disagreed with the server. */
  disagreements: number;
  /** Audit lines with an error. */
  failures: number;
}

/** `rounds` rounds of `parallel` connections at once through a fresh tunnel to `upstream`. */
async function drive(cert: CertPair, upstream: Upstream, rounds: number, parallel: number, reuse: 'never' | 'adaptive'): Promise<Outcome> {
  const h = await startTunnelService({
    upstream: { host: upstream.host, port: upstream.port, servername: 'localhost', ca: cert.certFile },
    cache: { reuse },
  });
  try {
    const reused: boolean[] = [];
    for (let r = 0; r < rounds; r++) {
      const got = await Promise.all(Array.from({ length: parallel }, () => verdictPlain(h.port)));
      reused.push(...got.map((v) => v.verdict === 'Reused'));
    }
    const lines = (await h.waitFor(isHandshake, rounds * parallel)) as HandshakeEvent[];
    const byAudit = lines.filter((e) => e.resumed).length;
    return {
      reused,
      disagreements: Math.abs(byAudit - reused.filter(Boolean).length),
      failures: lines.filter((e) => e.error !== undefined).length,
    };
  } finally {
    await h.stop();
    await upstream.stop();
  }
}

interface Scenario {
  id: string;
  label: string;
  skip?: string;
  upstream(cert: CertPair): Promise<Upstream>;
  rounds: number;
  /** Connections at once per round (default 1: sequential). */
  parallel?: number;
  /** The cache's `reuse` setting; default `never`. */
  reuse?: 'never' | 'adaptive';
  /** Connections not counted (the first round has nothing to offer); default 0. */
  warmup?: number;
  goal?: { share: number; text: string };
}

const sServer = (mode: SServerMode) => (cert: CertPair) => startSServer(mode, cert);
const nodeServer = (cert: CertPair) => startNodeTlsServer({ cert });

/** haproxy round robin over a TLS 1.2 node (tickets) and a TLS 1.3 node refusing reuse. */
async function versionMixed(cert: CertPair): Promise<Upstream> {
  const a = await startSServer('tls12-tickets', cert);
  const b = await startSServer('tls13-anti-replay', cert);
  const lb = await startHaproxy([a, b]);
  return {
    host: lb.host,
    port: lb.port,
    stop: async () => {
      await lb.stop();
      await a.stop();
      await b.stop();
    },
  };
}

const SCENARIOS: Scenario[] = [
  {
    id: 'antiReplaySequential',
    label: '60 sequential, s_server -tls1_3 -max_early_data 16384',
    upstream: sServer('tls13-anti-replay'),
    rounds: 60,
    goal: { share: 59 / 60, text: '>= 59 of 60' },
  },
  {
    id: 'antiReplayConcurrent',
    label: '8 concurrent x 10 rounds, same server (rounds 2-10)',
    upstream: sServer('tls13-anti-replay'),
    rounds: 10,
    parallel: 8,
    warmup: 8,
    goal: { share: 0.95, text: '>= 95%' },
  },
  {
    id: 'nodeNever',
    label: '60 sequential, Node TLS 1.3 (2 tickets, 0 on resumption), never',
    upstream: nodeServer,
    rounds: 60,
    goal: { share: 0.65, text: '>= 65% (bound 2/3)' },
  },
  {
    id: 'nodeAdaptive',
    label: '60 sequential, Node TLS 1.3 (2 tickets, 0 on resumption), adaptive',
    upstream: nodeServer,
    rounds: 60,
    reuse: 'adaptive',
    goal: { share: 0.98, text: '>= 98%' },
  },
  {
    id: 'tls12Tickets',
    label: '60 sequential, s_server -tls1_2 (tickets), after the first',
    upstream: sServer('tls12-tickets'),
    rounds: 60,
    warmup: 1,
    goal: { share: 1, text: 'all but the first' },
  },
  {
    id: 'tls12SessionIds',
    label: '60 sequential, s_server -tls1_2 -no_ticket (session ids), after the first',
    upstream: sServer('tls12-session-ids'),
    rounds: 60,
    warmup: 1,
    goal: { share: 1, text: 'all but the first' },
  },
  {
    id: 'versionMixed',
    label: '12 sequential, haproxy round robin over TLS 1.2 + TLS 1.3 s_server',
    skip: missing('haproxy'),
    upstream: versionMixed,
    rounds: 12,
    goal: { share: 6 / 12, text: '>= 6 of 12 (measured static best)' },
  },
  {
    id: 'versionMixedSequential',
    label: '60 sequential, same balancer',
    skip: missing('haproxy'),
    upstream: versionMixed,
    rounds: 60,
    goal: { share: 45 / 60, text: '>= 45 of 60' },
  },
  {
    id: 'versionMixedConcurrent',
    label: '8 concurrent x 10 rounds, same balancer (rounds 2-10)',
    skip: missing('haproxy'),
    upstream: versionMixed,
    rounds: 10,
    parallel: 8,
    warmup: 8,
    goal: { share: 36 / 72, text: '>= 36 of 72 (best static choice)' },
  },
];

/** `only`: scenario ids to run (a driver repeating some); default all. */
export async function run(only?: string[]): Promise<Section> {
  const name = 'Resumption through a tunnel (server verdicts)';
  const skip = missing('openssl');
  if (skip) return { name, lines: [`skipped: ${skip}`] };
  const cert = makeCert(['localhost']);
  const rows: string[][] = [];
  const figures: Record<string, Figure> = {};
  const notes: string[] = [];
  for (const s of SCENARIOS.filter((x) => !only || only.includes(x.id))) {
    if (s.skip) {
      rows.push([s.label, '-', '-', '-', s.goal?.text ?? '', `skipped: ${s.skip}`]);
      continue;
    }
    const out = await drive(cert, await s.upstream(cert), s.rounds, s.parallel ?? 1, s.reuse ?? 'never');
    const counted = out.reused.slice(s.warmup ?? 0);
    const resumed = counted.filter(Boolean).length;
    const met = s.goal ? resumed / counted.length >= s.goal.share - 1e-9 && out.failures === 0 : undefined;
    rows.push([s.label, String(resumed), String(counted.length), pct(resumed, counted.length), s.goal?.text ?? '', met === undefined ? '' : met ? 'yes' : 'NO']);
    figures[s.id] = { value: resumed, unit: `resumed of ${counted.length}`, goal: s.goal?.text, met };
    if (out.disagreements > 0) notes.push(`${s.id}: the audit disagreed with the server on ${out.disagreements} connection(s)`);
    if (out.failures > 0) notes.push(`${s.id}: ${out.failures} failed handshake(s)`);
  }
  return { name, lines: [...table(['scenario', 'resumed', 'of', 'share', 'goal', 'met'], rows), ...notes], figures };
}
