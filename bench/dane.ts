/**
 * DANE beside verify and may, in one run (alone: `npm run bench -- dane`): what DANE costs per
 * message, and whether resumption survives it. One Postfix destination (TLS 1.3 only, one ticket
 * per full handshake, `Reusing old session` logged per resumed connection) for mx.dest.test, a
 * signed zone dest.test (MX, A, TLSA 3 1 1 of the leaf's key, TTL 60) served by nsd through a
 * validating unbound, and ticketbooth smarthosts (the built CLI, one process each) routing by MX
 * through that unbound at levels may, verify (the CA as tls.ca) and dane. `connectionCache` is off:
 * one upstream connection per message, so handshakes and resumption are what differ. Each
 * contender takes MESSAGES sequential messages per rep, a client connection each, in SLICES turns
 * taken with the others. CPU is charged from /proc; resumption is the destination's own count.
 * Needs postfix, nsd, unbound, ldnsutils.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SecureResolver } from '../src/dns/secure-resolver.js';
import { nodeLookups, secureLookups } from '../src/smtp/host-lookups.js';
import { makeIssuedCert, type CertPair } from '../test/support/certs.js';
import { dnssecMissing, startDnssec } from '../test/support/dnssec.js';
import { missing } from '../test/support/interop.js';
import type { Postfix } from '../test/support/postfix.js';
import { startProcess } from '../test/support/process.js';
import { dial, sendMessage } from '../test/support/smtp-client.js';
import { CLI, ensureBuilt, NODE_FLAGS } from './peers/build.js';
import { charged } from './peers/cpu.js';
import { startDestination } from './postfix-destination.js';
import { median, table, type Figure, type Section } from './section.js';

const MESSAGES = 150;
/** Per contender before the reps: processes warmed up, the first ticket and the TLSA answer cached. */
const WARMUP = 10;
const REPS = 3;
/** Turns per rep: each contender sends MESSAGES / SLICES, then the next, so a load drift on the machine hits all alike. */
const SLICES = 5;
/** Rounds of a message's lookups timed in this process, to see what the resolver path costs alone. */
const LOOKUPS = 300;
const BODY = `Subject: bench\r\nFrom: a@client.test\r\nTo: b@dest.test\r\n\r\n${'Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n'.repeat(35)}`;
const TLS_LINE = /TLS connection established from/g;
const REUSED_LINE = /Reusing old session/g;

type Name = 'may' | 'verify' | 'dane' | 'dane, reuse adaptive';
const NAMES: Name[] = ['may', 'verify', 'dane', 'dane, reuse adaptive'];
const isDane = (n: Name): boolean => n.startsWith('dane');

const count = (text: string, re: RegExp): number => (text.match(re) ?? []).length;
const round2 = (x: number): number => Math.round(100 * x) / 100;
const slug = (n: Name): string => n.replace(/[^a-z]+/g, '_');

interface Contender {
  pid: number;
  port: number;
  audit: string;
  stop(): Promise<void>;
}

/** `ticketbooth serve`, one `type: smtp` listener by MX through unbound, at `tls`. */
async function startContender(dir: string, n: Name, tls: string, resolver: string): Promise<Contender> {
  const audit = join(dir, `audit-${slug(n)}.jsonl`);
  const config = join(dir, `${slug(n)}.yaml`);
  writeFileSync(
    config,
    `listeners:
  - name: smarthost
    type: smtp
    listen: 127.0.0.1:0
    hostname: relay.bench.test
    route: { mode: mx }
    tls: ${tls}
    connectionCache: { enabled: false }
${n === 'dane, reuse adaptive' ? 'cache: { reuse: adaptive }\n' : ''}dns: { servers: ["${resolver}"] }
audit: { file: "${audit}" }
shutdownTimeoutSeconds: 5
`,
  );
  const proc = await startProcess(process.execPath, [...NODE_FLAGS, CLI, 'serve', '--config', config], {
    ready: /smarthost listening on 127\.0\.0\.1:(\d+)/,
    timeoutMs: 20_000,
  });
  return { pid: proc.child.pid ?? NaN, port: Number(proc.ready[1]), audit, stop: () => proc.stop() };
}

interface Burst {
  seconds: number;
  cpuMs: number;
  handshakes: number;
  resumed: number;
}

/** `n` messages one after another, each on its own client connection; the destination's log says how its handshakes went. */
async function burst(c: Contender, dest: Postfix, n: number): Promise<Burst> {
  const logBefore = dest.log().length;
  const tlsBefore = count(dest.log(), TLS_LINE);
  const started = performance.now();
  const { cpu } = await charged(c.pid, async () => {
    for (let i = 0; i < n; i++) {
      const d = await dial(c.port);
      await d.cmd('EHLO client.bench.test');
      const r = await sendMessage(d, 'a@client.test', ['b@dest.test'], BODY);
      if (r.final.code !== 250) throw new Error(`message refused: ${r.final.raw}`);
      await d.cmd('QUIT');
      d.close();
    }
  });
  const seconds = (performance.now() - started) / 1000;
  // postlogd writes a moment later: wait for this burst's lines before counting them.
  await dest.waitForLog(TLS_LINE, tlsBefore + n, 10_000);
  const log = dest.log().slice(logBefore);
  return { seconds, cpuMs: cpu * 1000, handshakes: count(log, TLS_LINE), resumed: count(log, REUSED_LINE) };
}

/** The dane contender's smtp.transaction lines: how many, and how many applied dane and were Verified. */
async function verified(audit: string, expected: number): Promise<{ total: number; verified: number }> {
  const read = (): Array<{ dane?: { applied?: string; auth?: string } }> =>
    (existsSync(audit) ? readFileSync(audit, 'utf8') : '')
      .split('\n')
      .filter((l) => l.includes('"smtp.transaction"'))
      .map((l) => JSON.parse(l) as { dane?: { applied?: string; auth?: string } });
  const deadline = Date.now() + 5000; // the audit log is written asynchronously
  while (read().length < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const tx = read();
  return { total: tx.length, verified: tx.filter((t) => t.dane?.applied === 'dane' && t.dane.auth === 'Verified').length };
}

/**
 * A message's lookups, `LOOKUPS` rounds in this process (nothing else runs in it meanwhile), µs per
 * round, CPU and wall: MX, A and AAAA through Node's resolver (c-ares, what may and verify use) and
 * through the DNSSEC-aware one (dane), and a TLSA through the latter (dane asks it once per TTL).
 */
type Cost = { cpu: number; wall: number };
async function lookupCost(resolver: string): Promise<Record<'node' | 'secure' | 'tlsa', Cost>> {
  const node = new Resolver({ timeout: 5000, tries: 2 });
  node.setServers([resolver]);
  const sr = new SecureResolver({ servers: [resolver], timeoutMs: 5000, tries: 2 });
  const [cares, secure] = [nodeLookups(node), secureLookups(sr)];
  const ways = {
    node: () => cares.mx('dest.test').then(() => cares.addresses('mx.dest.test')),
    secure: () => secure.mx('dest.test').then(() => secure.addresses('mx.dest.test')),
    tlsa: () => sr.query('_25._tcp.mx.dest.test', 'TLSA'),
  };
  const got = { node: [] as Cost[], secure: [] as Cost[], tlsa: [] as Cost[] };
  // Interleaved in rounds of 50, the first of each way discarded (unbound's cache, code paths warm).
  for (let round = 0; round <= LOOKUPS / 50; round++)
    for (const way of ['node', 'secure', 'tlsa'] as const) {
      const [before, started] = [process.cpuUsage(), performance.now()];
      for (let i = 0; i < 50; i++) await ways[way]();
      const used = process.cpuUsage(before);
      if (round > 0) got[way].push({ cpu: (used.user + used.system) / 50, wall: ((performance.now() - started) * 1000) / 50 });
    }
  const med = (cs: Cost[]): Cost => ({ cpu: median(cs.map((c) => c.cpu)), wall: median(cs.map((c) => c.wall)) });
  return { node: med(got.node), secure: med(got.secure), tlsa: med(got.tlsa) };
}

export async function run(): Promise<Section> {
  const name = `DANE beside verify and may: ${MESSAGES} sequential messages by MX, one upstream connection each`;
  const skip = missing('postfix') ?? dnssecMissing();
  if (skip) return { name, lines: [`skipped: ${skip}`] };
  const dir = mkdtempSync(join(tmpdir(), 'tb-bench-dane-'));
  const stops: Array<() => Promise<void>> = [];
  try {
    const built = await ensureBuilt();
    const cert = makeIssuedCert(['mx.dest.test'], dir);
    const { postfix: dest, address } = await startDestination(undefined, (): CertPair => cert);
    stops.push(() => dest.stop());
    const caFile = join(dir, 'dest-ca.pem');
    writeFileSync(caFile, cert.ca);
    // certFile holds the chain: the leaf is its first certificate.
    const leaf = new X509Certificate(cert.chain.slice(0, cert.chain.indexOf('-----END CERTIFICATE-----') + 25));
    const spki = leaf.publicKey.export({ type: 'spki', format: 'der' });
    const dns = await startDnssec([
      {
        origin: 'dest.test',
        security: 'anchored',
        records: [
          '@ 60 IN MX 10 mx',
          `mx 60 IN A ${address}`,
          `_25._tcp.mx 60 IN TLSA 3 1 1 ${createHash('sha256').update(spki).digest('hex')}`,
        ],
      },
    ]);
    stops.push(() => dns.stop());

    const tls: Record<Name, string> = {
      may: '{ level: may }',
      verify: `{ level: verify, ca: "${caFile}" }`,
      dane: '{ level: dane }',
      'dane, reuse adaptive': '{ level: dane }',
    };
    const tb = {} as Record<Name, Contender>;
    for (const n of NAMES) {
      tb[n] = await startContender(dir, n, tls[n], dns.resolver);
      stops.push(() => tb[n].stop());
    }
    for (const n of NAMES) await burst(tb[n], dest, WARMUP);
    const got: Record<Name, Burst[]> = { may: [], verify: [], dane: [], 'dane, reuse adaptive': [] };
    for (let rep = 0; rep < REPS; rep++) {
      const sum = new Map(NAMES.map((n) => [n, { seconds: 0, cpuMs: 0, handshakes: 0, resumed: 0 }]));
      for (let slice = 0; slice < SLICES; slice++) {
        const first = (rep * SLICES + slice) % NAMES.length; // who goes first rotates
        for (const n of [...NAMES.slice(first), ...NAMES.slice(0, first)]) {
          const b = await burst(tb[n], dest, MESSAGES / SLICES);
          const s = sum.get(n)!;
          for (const k of ['seconds', 'cpuMs', 'handshakes', 'resumed'] as const) s[k] += b[k];
        }
      }
      for (const n of NAMES) got[n].push(sum.get(n)!);
    }
    const lookups = await lookupCost(dns.resolver);

    const rate = (n: Name): number => median(got[n].map((b) => MESSAGES / b.seconds));
    const cpu = (n: Name): number => median(got[n].map((b) => b.cpuMs / MESSAGES));
    const resumed = (n: Name): number => median(got[n].map((b) => b.resumed / b.handshakes));
    const figures: Record<string, Figure> = {};
    const rows = NAMES.map((n) => {
      figures[`${slug(n)}_msg_per_s`] = { value: Math.round(rate(n)), unit: 'msg/s' };
      figures[`${slug(n)}_cpu_per_message`] = { value: round2(cpu(n)), unit: 'ms (ticketbooth)' };
      figures[`${slug(n)}_resumed`] = { value: round2(resumed(n)), unit: 'share of destination handshakes resumed' };
      const b = got[n];
      return [
        n,
        rate(n).toFixed(0),
        cpu(n).toFixed(2),
        `${(100 * resumed(n)).toFixed(0)}%`,
        b.map((x) => `${x.resumed}/${x.handshakes}`).join(' '),
        b.map((x) => (MESSAGES / x.seconds).toFixed(0)).join(' '),
      ];
    });
    const ratios = (['verify', 'may'] as const).map((other) => {
      const r = rate('dane') / rate(other);
      const c = cpu('dane') / cpu(other);
      figures[`dane_over_${other}_msg_per_s`] = { value: round2(r), unit: 'ratio' };
      figures[`dane_over_${other}_cpu_per_message`] = { value: round2(c), unit: 'ratio' };
      return `dane / ${other}: ${r.toFixed(2)}x msg/s, ${c.toFixed(2)}x CPU/msg`;
    });
    const expected = WARMUP + REPS * MESSAGES;
    const checks = await Promise.all(
      NAMES.filter(isDane).map(async (n) => {
        const v = await verified(tb[n].audit, expected);
        figures[`${slug(n)}_verified`] = {
          value: v.verified,
          unit: `transactions of ${expected}`,
          goal: 'all',
          met: v.verified === expected,
        };
        return `${n}: ${v.verified}/${expected} transactions applied dane, auth Verified (audit log; ${v.total} lines)`;
      }),
    );
    for (const [way, what] of [
      ['node', 'MX+A+AAAA via c-ares'],
      ['secure', 'MX+A+AAAA via the secure resolver'],
      ['tlsa', 'TLSA via the secure resolver'],
    ] as const) {
      figures[`lookups_${way}_cpu_us`] = { value: Math.round(lookups[way].cpu), unit: `CPU µs per ${what} (bench process)` };
      figures[`lookups_${way}_wall_us`] = { value: Math.round(lookups[way].wall), unit: `µs per ${what} (bench process)` };
    }
    const us = (c: Cost): string => `${c.cpu.toFixed(0)} CPU / ${c.wall.toFixed(0)} wall`;
    return {
      name,
      lines: [
        ...table(
          [
            'tls level',
            'msg/s (median)',
            'ticketbooth CPU ms/msg',
            'resumed (median)',
            'dest resumed/handshakes each rep',
            `msg/s each rep (${REPS})`,
          ],
          rows,
        ),
        ...ratios,
        ...checks,
        `a message's lookups alone, µs in the bench process: MX+A+AAAA via c-ares ${us(lookups.node)}, ` +
          `via the secure resolver ${us(lookups.secure)}; a TLSA ${us(lookups.tlsa)} (asked once per 60 s TTL)`,
        `destination: Postfix TLS 1.3, one ticket per full handshake; ${built}`,
      ],
      figures,
    };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}
