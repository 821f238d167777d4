/**
 * `ticketbooth audit` over a generated 1,000,000-line audit log (run alone:
 * `node --import tsx bench/audit-report.ts`). The log mixes several hundred destinations of the
 * known behaviours (renewing, k=2 without renewal, k=1, TLS 1.2, anti-replay under adaptive reuse),
 * failures, SMTP transactions, refused clients and a few broken lines. The report runs as a child
 * process: the CLI as shipped (`npm run build`'s bundle, dist/src/cli.js, built first), timed by the
 * parent; its peak memory is the child's own maxRSS.
 * Side by side: the same command on an empty log (start-up cost), and the HTML format.
 * Goal: under 10 s and under 200 MiB.
 */
import { spawn } from 'node:child_process';
import { closeSync, createReadStream, createWriteStream, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { HandshakeEvent } from '../src/audit/events.js';
import type { Figure, Section } from './section.js';
import { CLI, ensureBuilt } from './peers/build.js';

const LINES = 1_000_000;
const DESTINATIONS = 400;
const DAY_MS = 24 * 3600 * 1000;

type Behaviour = 'renewing' | 'k2' | 'k1' | 'tls12' | 'anti-replay';
const BEHAVIOURS: Behaviour[] = ['renewing', 'k2', 'k2', 'k1', 'tls12', 'anti-replay'];

/** Deterministic pseudo-random numbers (mulberry32), so every run reads the same log. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Writes the log; returns its size in bytes. Each destination runs a small single-use ticket cache. */
export function generateLog(file: string, lines = LINES): number {
  const rnd = random(42);
  let hashes = 0;
  const nextHash = (): string => (0x100000000000 + ((hashes++ * 0x9e3779b1) % 0xefffffffffff)).toString(16).slice(-12);
  const dests = Array.from({ length: DESTINATIONS }, (_, i) => ({
    name: `mx${i}.example${i % 97}.test:25`,
    behaviour: BEHAVIOURS[i % BEHAVIOURS.length],
    stock: [] as string[],
    tls12: undefined as string | undefined,
    lastSpent: undefined as string | undefined,
    refusesReuse: false,
  }));
  // Zipf-like popularity: a few busy destinations, a long tail.
  const weights = dests.map((_, i) => 1 / (i + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  const cumulative: number[] = [];
  weights.reduce((acc, w, i) => ((cumulative[i] = acc + w / total), acc + w / total), 0);
  const pick = (): (typeof dests)[number] => {
    const r = rnd();
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid] < r) lo = mid + 1;
      else hi = mid;
    }
    return dests[lo];
  };

  const fd = openSync(file, 'w');
  const start = Date.UTC(2026, 10, 1);
  let chunk: string[] = [];
  const flush = (): void => {
    writeSync(fd, chunk.join('\n') + '\n');
    chunk = [];
  };
  for (let i = 0; i < lines; i++) {
    const time = new Date(start + Math.floor((i / lines) * DAY_MS)).toISOString();
    const r = rnd();
    if (r < 0.25) {
      const code = rnd() < 0.95 ? 250 : rnd() < 0.7 ? 451 : 550;
      chunk.push(
        JSON.stringify({
          time,
          event: 'smtp.transaction',
          listener: 'smtp',
          client: '127.0.0.1:40000',
          nextHop: pick().name,
          recipients: 1,
          size: 2000 + Math.floor(rnd() * 50_000),
          code,
          ms: 40 + rnd() * 200,
        }),
      );
    } else if (r < 0.252) {
      chunk.push(JSON.stringify({ time, event: 'client.refused', listener: 'smtp', client: '10.0.0.9:5555', reason: 'allow-list' }));
    } else if (r < 0.2521) {
      chunk.push('{"time":"' + time + '","event":"tls.handsh'); // cut off
    } else {
      chunk.push(JSON.stringify(handshake(pick(), time)));
    }
    if (chunk.length === 10_000) flush();
  }
  if (chunk.length) flush();
  closeSync(fd);
  return statSync(file).size;

  function handshake(d: (typeof dests)[number], time: string): HandshakeEvent {
    const e: HandshakeEvent = {
      time,
      event: 'tls.handshake',
      listener: 'smtp',
      destination: d.name,
      servername: d.name.split(':')[0],
      key: d.name.slice(0, 8),
      offered: 'none',
      reoffered: false,
      resumed: false,
      ticketsReceived: 0,
      receivedHashes: [],
      ticketsLeft: 0,
      handshakeMs: 0,
    };
    if (rnd() < 0.01) {
      e.error = rnd() < 0.5 ? `${d.name}: connect ECONNREFUSED` : `TLS handshake with ${d.name} timed out`;
      e.handshakeMs = 15_000 * rnd();
      e.fullCause = 'nothing-offered';
      return e;
    }
    const tls12 = d.behaviour === 'tls12';
    e.protocol = tls12 ? 'TLSv1.2' : 'TLSv1.3';
    e.cipher = tls12 ? 'ECDHE-ECDSA-AES128-GCM-SHA256' : 'TLS_AES_256_GCM_SHA384';
    if (tls12) {
      if (d.tls12) {
        e.offered = 'tls12-session';
        e.offeredHash = d.tls12;
        e.resumed = true;
      } else {
        e.fullCause = 'nothing-offered';
        d.tls12 = nextHash();
        e.ticketsReceived = 1;
        e.receivedHashes = [d.tls12];
      }
    } else {
      const ticket = d.stock.shift();
      if (ticket) {
        e.offered = 'tls13-ticket';
        e.offeredHash = ticket;
        d.lastSpent = ticket;
        e.resumed = true;
      } else if (d.behaviour === 'anti-replay' && !d.refusesReuse && d.lastSpent) {
        e.offered = 'tls13-ticket';
        e.offeredHash = d.lastSpent;
        e.reoffered = true;
        e.fullCause = 'refused';
        d.refusesReuse = true;
      } else {
        e.fullCause = 'nothing-offered';
      }
      const k = e.resumed ? (d.behaviour === 'renewing' || d.behaviour === 'anti-replay' ? 1 : 0) : d.behaviour === 'k1' ? 1 : 2;
      for (let j = 0; j < k; j++) {
        const h = nextHash();
        d.stock.unshift(h);
        e.receivedHashes.push(h);
      }
      d.stock.length = Math.min(d.stock.length, 8);
      e.ticketsReceived = k;
      // Now and then a burst empties the stock of an anti-replay destination: adaptive reuse again.
      if (d.behaviour === 'anti-replay' && rnd() < 0.02) {
        d.stock.length = 0;
        d.refusesReuse = false;
      }
    }
    e.ticketsLeft = d.stock.length;
    e.handshakeMs = Math.round((e.resumed ? 1.6 + rnd() * 1.5 : 2.1 + rnd() * 4) * 100) / 100;
    return e;
  }
}

interface ChildRun {
  seconds: number;
  maxRssMiB: number;
  bytesOut: number;
}

/** Runs the CLI; the child reports its own peak RSS on exit (an --import of a data: URL). */
function runCli(cli: string[], args: string[]): Promise<ChildRun> {
  const probe = `data:text/javascript,process.on('exit',()=>process.stderr.write('maxrss-kib '+process.resourceUsage().maxRSS+'\\n'))`;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, ['--import', probe, ...cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let bytesOut = 0;
    let err = '';
    child.stdout.on('data', (c: Buffer) => (bytesOut += c.length));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const seconds = (performance.now() - started) / 1000;
      const rss = /maxrss-kib (\d+)/.exec(err);
      if (code !== 0 || !rss) return reject(new Error(`ticketbooth ${args.join(' ')} exited ${code}: ${err}`));
      resolve({ seconds, maxRssMiB: Number(rss[1]) / 1024, bytesOut });
    });
  });
}

export async function run(): Promise<Section> {
  const dir = mkdtempSync(join(tmpdir(), 'tb-bench-audit-'));
  try {
    const log = join(dir, 'audit.jsonl');
    const empty = join(dir, 'empty.jsonl');
    closeSync(openSync(empty, 'w'));
    const genStart = performance.now();
    const bytes = generateLog(log);
    const genSeconds = (performance.now() - genStart) / 1000;
    await ensureBuilt();
    const cli = [CLI];
    const baseline = await runCli(cli, ['audit', empty]);
    const text = await runCli(cli, ['audit', log]);
    const json = await runCli(cli, ['audit', '--format', 'json', log]);
    const html = await runCli(cli, ['audit', '--format', 'html', log]);
    const gz = join(dir, 'audit.jsonl.gz');
    await pipeline(createReadStream(log), createGzip({ level: 1 }), createWriteStream(gz));
    const gzipped = await runCli(cli, ['audit', gz]);
    const row = (label: string, r: ChildRun): string =>
      `${label.padEnd(22)} ${r.seconds.toFixed(2).padStart(6)} s  ${r.maxRssMiB.toFixed(0).padStart(4)} MiB peak RSS  ` +
      `${(r.seconds / baseline.seconds).toFixed(1).padStart(5)}x the empty-log time  ${(LINES / Math.max(0.001, r.seconds - baseline.seconds) / 1e6).toFixed(2)} M lines/s net`;
    const goal = (r: ChildRun): boolean => r.seconds < 10 && r.maxRssMiB < 200;
    const figures: Record<string, Figure> = {};
    for (const [id, r] of [
      ['text', text],
      ['json', json],
      ['html', html],
      ['gzip', gzipped],
    ] as const) {
      figures[`${id}_seconds`] = { value: round2(r.seconds), unit: 's', goal: '< 10 s', met: r.seconds < 10 };
      figures[`${id}_peak_rss`] = { value: round2(r.maxRssMiB), unit: 'MiB', goal: '< 200 MiB', met: r.maxRssMiB < 200 };
    }
    figures.startup_seconds = { value: round2(baseline.seconds), unit: 's' };
    figures.startup_peak_rss = { value: round2(baseline.maxRssMiB), unit: 'MiB' };
    return {
      figures,
      name: 'audit report over 1,000,000 lines',
      lines: [
        `log: ${LINES.toLocaleString('en')} lines, ${(bytes / 2 ** 20).toFixed(0)} MiB, ${DESTINATIONS} destinations, generated in ${genSeconds.toFixed(1)} s`,
        `CLI: node ${cli.join(' ')}`,
        `${'empty log (start-up)'.padEnd(22)} ${baseline.seconds.toFixed(2).padStart(6)} s  ${baseline.maxRssMiB.toFixed(0).padStart(4)} MiB peak RSS`,
        row('--format text', text),
        row('--format json', json),
        row('--format html', html),
        row('text, gzipped input', gzipped),
        `goal (< 10 s, < 200 MiB): text ${goal(text) ? 'met' : 'MISSED'}, json ${goal(json) ? 'met' : 'MISSED'}, html ${goal(html) ? 'met' : 'MISSED'}, gzipped ${goal(gzipped) ? 'met' : 'MISSED'}`,
      ],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const section = await run();
  process.stdout.write(`${section.name}\n${section.lines.map((l) => `  ${l}`).join('\n')}\n`);
}
