/**
 * `workers: 1` against `workers: 2` (and `auto`, when it is another number here), in one run: the
 * peers-connections load (500 connections one after another, then 2,000 with 32 in flight, each a
 * resumable TLS 1.3 connection through the tunnel to the Node bench server), the contenders taking
 * turns rep by rep. Ticketbooth runs from dist/ as shipped.
 *
 * CPU is read from /proc for every process of a contender: the primary and its workers (its
 * children) apart, so the primary's own CPU per connection is what the workers' calls to the one
 * ticket cache cost it; a worker's share of the workers' CPU stands for its share of the
 * connections (the kernel picks the worker for each: SCHED_NONE). The primary's write system calls
 * per connection count its replies (and its audit file writes, batched). Beside them, the CPU
 * the bench server and this process (the load generator) use, and the machine's: on 2 cores they
 * all share, that says whether a second worker has a core to run on.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCert } from '../test/support/certs.js';
import { ensureBuilt } from './peers/build.js';
import { startTicketboothTunnelServe, type Ticketbooth, type Upstream, upstreamOf } from './peers/contenders.js';
import { childPids, cpuSeconds, machineBusySeconds, writeSyscalls } from './peers/cpu.js';
import { fixed, goalFigure, plainFigure, ratioCell } from './peers/figures.js';
import { interleave, pairedRatio } from './peers/interleave.js';
import { load } from './peers/load.js';
import { viaForwarder } from './peers/routes.js';
import { startNodeServer } from './peers/servers.js';
import { median, percentile, table, type Figure, type Section } from './section.js';

const REPS = 3;
const WARM_UP = 100;
const LOADS = [
  { id: 'sequential', label: 'sequential', count: 500, inFlight: 1 },
  { id: 'inflight32', label: '32 in flight', count: 2000, inFlight: 32 },
] as const;
type Load = (typeof LOADS)[number];
/** The issue's check: `workers: 2` at 32 in flight. */
const GOAL = { atLeast: 1.25 };

interface Contender {
  id: string;
  workers: number | 'auto';
}

interface Sample {
  rate: number;
  p50: number;
  /** CPU ms per connection: all of ticketbooth's processes, the primary alone, each worker. */
  totalMs: number;
  primaryMs: number;
  workerMs: number[];
  /** The primary's write system calls per connection: its replies to the workers (IPC reads are recvmsg, not counted). */
  writes: number;
  /** Cores busy on average over the rep: ticketbooth, the bench server, this process, the whole machine. */
  cores: { tb: number; server: number; bench: number; machine: number };
}

/** One contender's processes: the primary (or the one process of `workers: 1`) and its workers. */
interface Running {
  tb: Ticketbooth;
  workers: number[];
}

async function sample(r: Running, serverPid: number, l: Load): Promise<Sample> {
  const pids = [r.tb.pid, ...r.workers];
  const cpu0 = pids.map(cpuSeconds);
  const [server0, machine0, io0, bench0] = [cpuSeconds(serverPid), machineBusySeconds(), writeSyscalls(r.tb.pid), process.cpuUsage()];
  const result = await load(viaForwarder(r.tb), l.count, l.inFlight);
  const cpu = pids.map((p, i) => cpuSeconds(p) - cpu0[i]);
  const writes = writeSyscalls(r.tb.pid) - io0;
  const bench = process.cpuUsage(bench0);
  const perConn = (s: number): number => (1000 * s) / l.count;
  const perSecond = (s: number): number => s / result.seconds;
  // One process (workers: 1) has no primary apart and no IPC: its syscalls are its sockets'.
  const alone = r.workers.length === 0;
  return {
    rate: l.count / result.seconds,
    p50: percentile(
      result.replies.map((x) => x.ms),
      50,
    ),
    totalMs: perConn(cpu.reduce((a, b) => a + b, 0)),
    primaryMs: alone ? NaN : perConn(cpu[0]),
    workerMs: cpu.slice(1).map(perConn),
    writes: alone ? NaN : writes / l.count,
    cores: {
      tb: perSecond(cpu.reduce((a, b) => a + b, 0)),
      server: perSecond(cpuSeconds(serverPid) - server0),
      bench: perSecond((bench.user + bench.system) / 1e6),
      machine: perSecond(machineBusySeconds() - machine0),
    },
  };
}

/** The table rows and figures of one load; the lines saying where the CPU went. */
function report(
  l: Load,
  contenders: Contender[],
  got: Record<string, Sample[]>,
  rows: string[][],
  figures: Record<string, Figure>,
): string[] {
  const of = (id: string, f: (s: Sample) => number): number[] => got[id].map(f);
  const [one, ...more] = contenders;
  const measure = (label: string, key: string, f: (s: Sample) => number, unit: string, digits: number, goal?: typeof GOAL): void => {
    // w1 has no primary apart: its cells are '-' and it has no figure.
    const put = (k: string, fig: Figure): void => {
      if (Number.isFinite(fig.value)) figures[k] = fig;
    };
    for (const c of contenders) put(`${l.id}_${key}_${c.id}`, plainFigure(median(of(c.id, f)), unit));
    const cells = more.map((c) => {
      const ratio = pairedRatio(of(c.id, f), of(one.id, f));
      put(`${l.id}_${key}_${c.id}_over_${one.id}`, goal ? goalFigure(ratio, 'ratio', goal) : plainFigure(ratio, 'ratio'));
      return ratioCell(ratio, goal);
    });
    rows.push([`${label}, ${l.label}`, ...contenders.map((c) => fixed(median(of(c.id, f)), digits)), ...cells]);
  };
  measure('connections/s', 'rate', (s) => s.rate, 'conn/s', 0, l.id === 'inflight32' ? GOAL : undefined);
  measure('p50 latency ms', 'p50', (s) => s.p50, 'ms', 2);
  measure('CPU ms/conn, all processes', 'cpuMs', (s) => s.totalMs, 'CPU ms/conn', 3);
  measure('  of it the primary', 'primaryMs', (s) => s.primaryMs, 'CPU ms/conn', 3);
  measure('primary writes/conn (IPC replies)', 'writes', (s) => s.writes, 'per conn', 2);
  return [...contenders.map((c) => cores(l, c, got[c.id], figures)), coreRich(l, contenders, got, figures)];
}

/** Where the machine's cores went during one contender's reps, and how its workers split theirs. */
function cores(l: Load, c: Contender, s: Sample[], figures: Record<string, Figure>): string {
  const parts = ['tb', 'server', 'bench', 'machine'] as const;
  const busy = Object.fromEntries(parts.map((k) => [k, median(s.map((x) => x.cores[k]))])) as Record<(typeof parts)[number], number>;
  for (const k of parts) figures[`${l.id}_cores_${k}_${c.id}`] = plainFigure(busy[k], 'cores');
  // Ticks are 10 ms: on a quiet machine the difference can come out a hair below zero.
  const others = Math.max(0, busy.machine - busy.tb - busy.server - busy.bench);
  const shares = s[0].workerMs.map((_, i) => median(s.map((x) => x.workerMs[i] / x.workerMs.reduce((a, b) => a + b, 0))));
  for (const [i, x] of shares.entries()) figures[`${l.id}_workerShare${i + 1}_${c.id}`] = plainFigure(x, 'share');
  const split = shares.length ? `; workers' CPU split ${shares.map((x) => `${(100 * x).toFixed(0)}%`).join(' / ')}` : '';
  return (
    `${c.id}, ${l.label}: cores busy: ticketbooth ${fixed(busy.tb, 2)}, bench server ${fixed(busy.server, 2)}, ` +
    `load generator ${fixed(busy.bench, 2)}, other processes ${fixed(others, 2)}, machine ${fixed(busy.machine, 2)} of ${availableParallelism()}${split}`
  );
}

/**
 * What a host with a core for each process would give (bench server and load generator on cores of
 * their own): one process at a full core; with workers, the busiest worker at a full core, or the
 * primary's, whichever comes first. From the CPU per connection measured here (on a loaded machine
 * a connection costs more CPU than on an idle one: an estimate).
 */
function coreRich(l: Load, contenders: Contender[], got: Record<string, Sample[]>, figures: Record<string, Figure>): string {
  const at = (c: Contender): number => {
    const s = got[c.id];
    if (s[0].workerMs.length === 0) return 1000 / median(s.map((x) => x.totalMs));
    const busiest = Math.max(...s[0].workerMs.map((_, i) => median(s.map((x) => x.workerMs[i]))));
    return Math.min(1000 / busiest, 1000 / median(s.map((x) => x.primaryMs)));
  };
  const [one, ...more] = contenders;
  const cells = contenders.map((c) => {
    figures[`${l.id}_coreRich_${c.id}`] = plainFigure(at(c), 'conn/s');
    return `${c.id} ${fixed(at(c), 0)}`;
  });
  const ratios = more.map((c) => `${c.id}/${one.id} ${fixed(at(c) / at(one), 2)}x`);
  return `${l.label}, a core for each process (estimate from CPU per connection): conn/s ${cells.join(', ')}; ${ratios.join(', ')}`;
}

async function startContender(dir: string, up: Upstream, c: Contender): Promise<Running> {
  const tb = await startTicketboothTunnelServe(dir, up, { workers: c.workers });
  // The primary says it listens once every worker has bound: they are all there by now.
  return { tb, workers: childPids(tb.pid) };
}

export async function run(): Promise<Section> {
  const auto = availableParallelism();
  const contenders: Contender[] = [
    { id: 'w1', workers: 1 },
    { id: 'w2', workers: 2 },
    ...(auto !== 1 && auto !== 2 ? [{ id: 'auto', workers: 'auto' as const }] : []),
  ];
  const name = `workers: 1 against workers: 2${contenders.length > 2 ? ' and auto' : ''}, connection setup through the tunnel to the Node bench server, TLS 1.3 (median of ${REPS} interleaved reps)`;
  const built = await ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'tb-bench-workers-'));
  const running: { stop(): Promise<void> }[] = [];
  try {
    const cert = makeCert(['localhost'], dir);
    const server = await startNodeServer(cert);
    running.push(server);
    const up = upstreamOf(server, cert);
    const procs: Record<string, Running> = {};
    for (const c of contenders) {
      procs[c.id] = await startContender(dir, up, c);
      running.push(procs[c.id].tb);
      await load(viaForwarder(procs[c.id].tb), WARM_UP, 1);
    }
    const rows: string[][] = [];
    const figures: Record<string, Figure> = {};
    const notes: string[] = [];
    for (const l of LOADS) {
      const ids = contenders.map((c) => c.id);
      const got = await interleave(ids, REPS, (id) => sample(procs[id], server.pid, l));
      notes.push(...report(l, contenders, got, rows, figures));
    }
    const [one, ...more] = contenders;
    return {
      name,
      lines: [
        ...table(['measure', ...contenders.map((c) => c.id), ...more.map((c) => `${c.id}/${one.id}`)], rows),
        `Goal (! = not met): conn/s at 32 in flight with workers: 2 >= ${GOAL.atLeast}x workers: 1. Ratios: median of per-rep ratios.`,
        ...notes,
        'CPU: utime+stime from /proc of the primary and of each worker (w1: its one process); other processes: the machine less those measured.',
        `workers: auto is ${auto} here${contenders.length > 2 ? '' : ', the same as w2: not run apart'}. ${built}.`,
      ],
      figures,
    };
  } finally {
    for (const r of running.reverse()) await r.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}
