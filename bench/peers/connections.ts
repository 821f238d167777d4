/**
 * Connection setup: each connection connects (to the forwarder, or with TLS straight to the
 * server for direct), sends `GET /`, reads the Node bench server's one-line page to its close.
 * 500 one after another, then 2,000 with 32 in flight; ticketbooth, stunnel and direct take turns
 * rep by rep. Latency is connect to the end of the reply. The page says whether the server
 * resumed the upstream TLS session (`Reused`) or not (`New`): that is the resumed count.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as connectTls } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCert } from '../../test/support/certs.js';
import { missing } from '../../test/support/interop.js';
import { median, percentile, table, type Figure, type Section } from '../section.js';
import { ensureBuilt } from './build.js';
import { startStunnel, startTicketboothTunnel, type ContenderName, type Upstream } from './contenders.js';
import { charged } from './cpu.js';
import { fixed, goalFigure, plainFigure, ratioCell, type Goal } from './figures.js';
import { interleave, pairedRatio, REPS } from './interleave.js';
import { direct, viaForwarder, type Route } from './routes.js';
import { startNodeServer } from './servers.js';

const CONTENDERS = ['ticketbooth', 'stunnel', 'direct'] as const satisfies readonly ContenderName[];
type Contender = (typeof CONTENDERS)[number];
const LOADS = [
  { id: 'sequential', label: 'sequential', count: 500, inFlight: 1 },
  { id: 'inflight32', label: '32 in flight', count: 2000, inFlight: 32 },
] as const;
const WARM_UP = 100;
const GOALS: Record<'rate' | 'p50' | 'cpu', Goal> = { rate: { atLeast: 1.0 }, p50: { atMost: 1.1 }, cpu: { atMost: 1.0 } };

interface Reply {
  ms: number;
  reused: boolean;
}

/** One connection: connect, `GET /`, read the page to the server's close. */
function request(route: Route): Promise<Reply> {
  const started = performance.now();
  const { socket, ready } = route.open();
  return new Promise((resolve, reject) => {
    let page = '';
    let ms = NaN;
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => (page += c));
    socket.once('end', () => (ms = performance.now() - started));
    socket.on('error', reject);
    socket.on('close', () => {
      const m = /(New|Reused), (TLSv[\d.]+)/.exec(page);
      if (!m || m[2] !== 'TLSv1.3') reject(new Error(`${route.name}: unexpected reply ${JSON.stringify(page.slice(0, 80))}`));
      else resolve({ ms, reused: m[1] === 'Reused' });
    });
    socket.once(ready, () => socket.write('GET / HTTP/1.0\r\n\r\n'));
  });
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

/** `count` connections, `inFlight` at a time. */
async function load(route: Route, count: number, inFlight: number): Promise<{ seconds: number; replies: Reply[] }> {
  const replies: Reply[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) {
        next++;
        replies.push(await request(route));
      }
    }),
  );
  return { seconds: (performance.now() - started) / 1000, replies };
}

interface Sample {
  rate: number;
  p50: number;
  cpuMs: number;
  resumed: number;
  count: number;
}

export async function run(): Promise<Section> {
  const name = `Peers, connection setup: ticketbooth vs stunnel vs direct Node TLS to the Node bench server, TLS 1.3 (median of ${REPS} interleaved reps)`;
  const skip = missing('openssl', 'stunnel4');
  if (skip) return { name, lines: [`skipped: ${skip}`] };
  const built = await ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'tb-bench-peers-conn-'));
  const running: { stop(): Promise<void> }[] = [];
  const keep = <T extends { stop(): Promise<void> }>(x: T): T => (running.push(x), x);
  try {
    const cert = makeCert(['localhost'], dir);
    const server = keep(await startNodeServer(cert));
    const up: Upstream = { host: server.host, port: server.port, servername: 'localhost', cert };
    const tb = keep(await startTicketboothTunnel(dir, up));
    const st = keep(await startStunnel(up));
    const routes: Record<Contender, Route> = { ticketbooth: viaForwarder(tb), stunnel: viaForwarder(st), direct: direct(up) };
    for (const k of CONTENDERS) await load(routes[k], WARM_UP, 1);
    const group = await keyExchange(up);

    const rows: string[][] = [];
    const figures: Record<string, Figure> = {};
    const resumedRows: string[] = [];
    for (const l of LOADS) {
      const got = await interleave(CONTENDERS, REPS, async (k): Promise<Sample> => {
        const { result, cpu } = await charged(routes[k].pid, () => load(routes[k], l.count, l.inFlight));
        const ms = result.replies.map((r) => r.ms);
        return {
          rate: l.count / result.seconds,
          p50: percentile(ms, 50),
          cpuMs: (1000 * cpu) / l.count,
          resumed: result.replies.filter((r) => r.reused).length,
          count: l.count,
        };
      });
      const of = (k: Contender, f: keyof Sample): number[] => got[k].map((s) => s[f]);
      const measure = (label: string, f: 'rate' | 'p50' | 'cpuMs', unit: string, digits: number, goal: Goal): void => {
        const ratio = pairedRatio(of('ticketbooth', f), of('stunnel', f));
        const key = `${l.id}_${f}`;
        for (const k of CONTENDERS) if (f !== 'cpuMs' || k !== 'direct') figures[`${key}_${k}`] = plainFigure(median(of(k, f)), unit);
        figures[`${key}_tb_over_stunnel`] = goalFigure(ratio, 'ratio', goal);
        const cells = CONTENDERS.map((k) => (f === 'cpuMs' && k === 'direct' ? '-' : fixed(median(of(k, f)), digits)));
        rows.push([
          `${label}, ${l.label}`,
          ...cells,
          ratioCell(ratio, goal),
          'atLeast' in goal ? `>= ${goal.atLeast}x` : `<= ${goal.atMost}x`,
        ]);
      };
      measure('connections/s', 'rate', 'conn/s', 0, GOALS.rate);
      measure('p50 latency ms', 'p50', 'ms', 2, GOALS.p50);
      measure('CPU ms/connection', 'cpuMs', 'CPU ms/conn', 3, GOALS.cpu);
      const share = (k: Contender): string => {
        const r = of(k, 'resumed').reduce((a, b) => a + b, 0);
        const n = of(k, 'count').reduce((a, b) => a + b, 0);
        return `${k} ${((100 * r) / n).toFixed(0)}%`;
      };
      resumedRows.push(`upstream handshakes resumed (server's verdict), ${l.label}: ${CONTENDERS.map(share).join(', ')}`);
    }
    const audit = tb.handshakes();
    return {
      name,
      lines: [
        ...table(['measure', ...CONTENDERS, 'tb/stunnel', 'goal'], rows),
        '! = goal not met. Ratios: median of per-rep ratios. CPU: the forwarder process (utime+stime), none for direct.',
        ...resumedRows,
        `key exchange: ticketbooth and direct run on Node ${process.versions.node} (OpenSSL ${process.versions.openssl}) and get ${group} from the Node server; stunnel runs on ${st.openssl}.`,
        `ticketbooth's audit: ${audit.resumed}/${audit.total} handshakes resumed (warm-up included); it offers each ticket once, the Node server issues 2 per full handshake and none on resumption. ${built}.`,
      ],
      figures,
    };
  } finally {
    for (const r of running.reverse()) await r.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}
