/**
 * Bulk bytes through ticketbooth's tunnel, stunnel and a direct Node TLS client, both directions,
 * against the Node bench server and `openssl s_server`. Forwarder CPU is charged per GiB moved.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCert } from '../../test/support/certs.js';
import { missing } from '../../test/support/interop.js';
import { median, table, type Figure, type Section } from '../section.js';
import { ensureBuilt } from './build.js';
import { startStunnel, startTicketboothTunnel, type ContenderName, type Forwarder, type Upstream } from './contenders.js';
import { charged } from './cpu.js';
import { fixed, goalFigure, plainFigure, ratioCell } from './figures.js';
import { interleave, pairedRatio, REPS } from './interleave.js';
import { direct, viaForwarder, type Route } from './routes.js';
import { startNodeServer, startSServerDownload, startSServerUpload, type Server } from './servers.js';
import { transfer, type Job } from './transfer.js';

const MIB = 1024 * 1024;
const SIZE = 64 * MIB;
const WARM_UP = 8 * MIB;
const CONTENDERS = ['ticketbooth', 'stunnel', 'direct'] as const satisfies readonly ContenderName[];
const MBPS_GOAL = { atLeast: 1.0 };
const CPU_GOAL = { atMost: 1.1 };

interface Case {
  id: string;
  label: string;
  job: (size: number) => Job;
  routes: Record<(typeof CONTENDERS)[number], Route>;
}

export async function run(): Promise<Section> {
  const name = `Peers, bulk: ${SIZE / MIB} MiB per transfer, ticketbooth vs stunnel vs direct Node TLS (median of ${REPS} interleaved reps)`;
  const skip = missing('openssl', 'stunnel4');
  if (skip) return { name, lines: [`skipped: ${skip}`] };
  const built = await ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'tb-bench-peers-bulk-'));
  const running: { stop(): Promise<void> }[] = [];
  const keep = <T extends { stop(): Promise<void> }>(x: T): T => (running.push(x), x);
  try {
    const cert = makeCert(['localhost'], dir);
    const upstream = (s: Server): Upstream => ({ host: s.host, port: s.port, servername: 'localhost', cert });
    const node = upstream(keep(await startNodeServer(cert)));
    const www = upstream(keep(await startSServerDownload(cert, dir, SIZE)));
    const sinkServer = keep(await startSServerUpload(cert, dir));
    const sink = upstream(sinkServer);
    const routesTo = async (up: Upstream): Promise<Case['routes']> => {
      const tb: Forwarder = keep(await startTicketboothTunnel(dir, up));
      const st = keep(await startStunnel(up));
      return { ticketbooth: viaForwarder(tb), stunnel: viaForwarder(st), direct: direct(up) };
    };
    const toNode = await routesTo(node);
    const cases: Case[] = [
      { id: 'node_down', label: 'Node server, download', job: (size) => ({ kind: 'node-down', size }), routes: toNode },
      { id: 'node_up', label: 'Node server, upload', job: (size) => ({ kind: 'node-up', size }), routes: toNode },
      { id: 'sserver_down', label: 's_server -WWW, download', job: () => ({ kind: 'www-down', size: SIZE }), routes: await routesTo(www) },
      {
        id: 'sserver_up',
        label: 's_server sink, upload',
        job: (size) => ({ kind: 'sink-up', size, sink: sinkServer }),
        routes: await routesTo(sink),
      },
    ];
    // Warm-up, not counted (JIT, caches); s_server -WWW serves its one file, of SIZE bytes, whatever is asked.
    for (const c of cases) for (const k of CONTENDERS) await transfer(c.routes[k], c.job(WARM_UP));

    const figures: Record<string, Figure> = {};
    const rows: string[][] = [];
    for (const c of cases) {
      const got = await interleave(CONTENDERS, REPS, async (k) => {
        const route = c.routes[k];
        const { result: seconds, cpu } = await charged(route.pid, () => transfer(route, c.job(SIZE)));
        return { mbps: SIZE / seconds / 1e6, cpuPerGiB: cpu / (SIZE / (1024 * MIB)) };
      });
      const mbps = (k: (typeof CONTENDERS)[number]): number[] => got[k].map((s) => s.mbps);
      const cpu = (k: (typeof CONTENDERS)[number]): number[] => got[k].map((s) => s.cpuPerGiB);
      const vsStunnel = pairedRatio(mbps('ticketbooth'), mbps('stunnel'));
      const vsDirect = pairedRatio(mbps('ticketbooth'), mbps('direct'));
      const cpuRatio = pairedRatio(cpu('ticketbooth'), cpu('stunnel'));
      for (const k of CONTENDERS) figures[`${c.id}_${k}_MBps`] = plainFigure(median(mbps(k)), 'MB/s');
      figures[`${c.id}_MBps_tb_over_stunnel`] = goalFigure(vsStunnel, 'ratio', MBPS_GOAL);
      figures[`${c.id}_MBps_tb_over_direct`] = plainFigure(vsDirect, 'ratio');
      figures[`${c.id}_cpu_per_GiB_ticketbooth`] = plainFigure(median(cpu('ticketbooth')), 'CPU s/GiB');
      figures[`${c.id}_cpu_per_GiB_stunnel`] = plainFigure(median(cpu('stunnel')), 'CPU s/GiB');
      figures[`${c.id}_cpu_per_GiB_tb_over_stunnel`] = goalFigure(cpuRatio, 'ratio', CPU_GOAL);
      rows.push([
        c.label,
        ...CONTENDERS.map((k) => fixed(median(mbps(k)), 0)),
        ratioCell(vsStunnel, MBPS_GOAL),
        ratioCell(vsDirect),
        fixed(median(cpu('ticketbooth')), 2),
        fixed(median(cpu('stunnel')), 2),
        ratioCell(cpuRatio, CPU_GOAL),
      ]);
    }
    const lines = [
      ...table(
        [
          'MB/s (10^6 B/s)',
          'ticketbooth',
          'stunnel',
          'direct',
          'tb/stunnel',
          'tb/direct',
          'tb CPU s/GiB',
          'stunnel CPU s/GiB',
          'CPU tb/stunnel',
        ],
        rows,
      ),
      `goals (tb/stunnel): MB/s >= ${MBPS_GOAL.atLeast}x, CPU per GiB <= ${CPU_GOAL.atMost}x; ! = not met. Ratios: median of per-rep ratios.`,
      `forwarder CPU: utime+stime of its process over the transfer (10 ms ticks); direct has no forwarder. ${built}.`,
    ];
    return { name, lines, figures };
  } finally {
    for (const r of running.reverse()) await r.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}
