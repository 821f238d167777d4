/**
 * Resumption through a ticketbooth tunnel, judged by the servers themselves (the `-www` page says
 * `New` or `Reused`). Each scenario gets a fresh server and a fresh ticketbooth (empty cache).
 * Run alone: `node --import tsx bench/run.ts resumption`.
 */
import type { HandshakeEvent } from '../src/audit/events.js';
import { makeCert, type CertPair } from '../test/support/certs.js';
import { missing, which } from '../test/support/interop.js';
import {
  getTls,
  parseVerdict,
  startHaproxy,
  startNodeTlsServer,
  startSServer,
  verdictPlain,
  type SServerMode,
} from '../test/support/servers.js';
import { startStunnelClient } from '../test/support/stunnel.js';
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

/** `n` rounds of `parallel` connections at once; `verdictOf` opens one and says whether the server resumed it. */
async function runRounds(n: number, parallel: number, verdictOf: () => Promise<boolean>): Promise<boolean[]> {
  const reused: boolean[] = [];
  for (let r = 0; r < n; r++) reused.push(...(await Promise.all(Array.from({ length: parallel }, verdictOf))));
  return reused;
}

/** `n` rounds of `parallel` connections at once through a fresh tunnel to `upstream`. */
async function drive(cert: CertPair, upstream: Upstream, n: number, parallel: number, reuse: 'never' | 'adaptive'): Promise<Outcome> {
  const h = await startTunnelService({
    upstream: { host: upstream.host, port: upstream.port, servername: 'localhost', ca: cert.certFile },
    cache: { reuse },
  });
  try {
    const reused = await runRounds(n, parallel, async () => (await verdictPlain(h.port)).verdict === 'Reused');
    const lines = (await h.waitFor(isHandshake, n * parallel)) as HandshakeEvent[];
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

/** The same rounds through a peer instead of ticketbooth (no audit: the servers' word only). */
async function drivePeer(peer: Peer, cert: CertPair, upstream: Upstream, n: number, parallel: number): Promise<Outcome> {
  try {
    if (peer === 'stunnel') {
      const st = await startStunnelClient(upstream, cert);
      try {
        return {
          reused: await runRounds(n, parallel, async () => (await verdictPlain(st.port)).verdict === 'Reused'),
          disagreements: 0,
          failures: 0,
        };
      } finally {
        await st.stop();
      }
    }
    // Node's tls.connect with one "latest session" slot, as https.Agent keeps per destination.
    let slot: Buffer | undefined;
    const one = async (): Promise<boolean> => {
      const got = await getTls({
        host: upstream.host,
        port: upstream.port,
        servername: 'localhost',
        ca: cert.cert,
        ...(slot ? { session: slot } : {}),
      });
      if (got.sessions.length > 0) slot = got.sessions[got.sessions.length - 1];
      return parseVerdict(got.page).verdict === 'Reused';
    };
    return { reused: await runRounds(n, parallel, one), disagreements: 0, failures: 0 };
  } finally {
    await upstream.stop();
  }
}

type Peer = 'stunnel' | 'one-slot';

interface Scenario {
  id: string;
  label: string;
  skip?: string;
  /** A comparison row: the same load through a peer instead of ticketbooth. */
  peer?: Peer;
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
  {
    id: 'versionMixedConcurrentStunnel',
    label: '  peer: stunnel 5 client (one session per service), same load',
    skip: which('stunnel4') ? missing('haproxy') : 'needs stunnel4 (Debian package)',
    peer: 'stunnel',
    upstream: versionMixed,
    rounds: 10,
    parallel: 8,
    warmup: 8,
  },
  {
    id: 'versionMixedConcurrentOneSlot',
    label: '  peer: Node tls.connect, one latest-session slot, same load',
    skip: missing('haproxy'),
    peer: 'one-slot',
    upstream: versionMixed,
    rounds: 10,
    parallel: 8,
    warmup: 8,
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
    const upstream = await s.upstream(cert);
    const out = s.peer
      ? await drivePeer(s.peer, cert, upstream, s.rounds, s.parallel ?? 1)
      : await drive(cert, upstream, s.rounds, s.parallel ?? 1, s.reuse ?? 'never');
    const counted = out.reused.slice(s.warmup ?? 0);
    const resumed = counted.filter(Boolean).length;
    const met = s.goal ? resumed / counted.length >= s.goal.share - 1e-9 && out.failures === 0 : undefined;
    rows.push([
      s.label,
      String(resumed),
      String(counted.length),
      pct(resumed, counted.length),
      s.goal?.text ?? '',
      met === undefined ? '' : met ? 'yes' : 'NO',
    ]);
    figures[s.id] = { value: resumed, unit: `resumed of ${counted.length}`, goal: s.goal?.text, met };
    if (out.disagreements > 0) notes.push(`${s.id}: the audit disagreed with the server on ${out.disagreements} connection(s)`);
    if (out.failures > 0) notes.push(`${s.id}: ${out.failures} failed handshake(s)`);
  }
  const ours = figures.versionMixedConcurrent?.value;
  for (const peer of ['versionMixedConcurrentStunnel', 'versionMixedConcurrentOneSlot']) {
    const theirs = figures[peer]?.value;
    if (ours !== undefined && theirs) notes.push(`versionMixedConcurrent / ${peer}: ${(ours / theirs).toFixed(2)}`);
  }
  return { name, lines: [...table(['scenario', 'resumed', 'of', 'share', 'goal', 'met'], rows), ...notes], figures };
}
