import { connect } from 'node:net';
import type { Section } from '../bench/section.js';
import { makeCert } from '../test/support/certs.js';
import { smtpListener, tunnelListener } from './config.js';
import { Ledger } from './ledger.js';
import { messageBody } from './message.js';
import { settled, within } from './pool.js';
import { auditFindings, findingLines } from './report.js';
import { Rng } from './rng.js';
import { startSink } from './sink.js';
import { startTicketbooth, type Ticketbooth } from './ticketbooth.js';
import { startTlsEcho } from './tls-echo.js';
import { transact } from './transaction.js';
import { codeOf, show, sourceAddress, Wire } from './wire.js';
import { check, clean, summary, type Verdict } from './verdict.js';

export interface LoadOptions {
  smtp: number;
  tunnels: number;
  seed: number;
  built?: boolean;
}

export interface LoadResult {
  section: Section;
  verdict: Verdict;
  smtpAccepted: number;
  echoesExact: number;
  crashed?: string;
  ok: boolean;
}

const LOAD_MS = 300_000;

/**
 * N SMTP clients connect, greet and EHLO; once all N are open at the same time, each sends one
 * message and quits. Then N tunnel clients, all open at once, each send seeded random bytes,
 * half-close, and must read back exactly those bytes from a TLS echo server behind the tunnel.
 */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const cert = makeCert(['localhost', '127.0.0.1']);
  const sink = await startSink(cert);
  const echo = await startTlsEcho(cert);
  const tb = await startTicketbooth(
    { listeners: [smtpListener('load', sink.port), tunnelListener('tunnel', echo.port, cert.certFile)] },
    { built: o.built },
  );
  try {
    const smtp = await smtpLoad(tb, o.smtp, o.seed);
    await settled(() => sink.stored.length);
    const verdict = check(smtp.ledger, sink.stored);
    const tunnel = await tunnelLoad(tb, o.tunnels, o.seed);
    const crashed = tb.crashed();
    const rss = tb.rss();
    await tb.stop();
    const audit = auditFindings(tb.auditLines());
    const ok = clean(verdict) && smtp.accepted === o.smtp && tunnel.exact === o.tunnels && !crashed && audit.undefinedClients === 0;
    const lines = [
      `SMTP: ${o.smtp} sessions open at once (EHLO answered to all ${smtp.open} before any MAIL), then one message each: ${smtp.accepted}/${o.smtp} got 250 in ${smtp.seconds.toFixed(1)} s`,
      `  sink: ${summary(verdict)}`,
      ...(smtp.problems.length ? [`  client-side problems: ${smtp.problems.length}; e.g. ${smtp.problems.slice(0, 3).join(' | ')}`] : []),
      `tunnel: ${o.tunnels} connections open at once, ${tunnel.exact}/${o.tunnels} echoes byte-exact (${(tunnel.bytes / 1048576).toFixed(1)} MiB each way) in ${tunnel.seconds.toFixed(1)} s; echo server saw ${echo.connections()} TLS connections`,
      ...(tunnel.problems.length ? [`  problems: ${tunnel.problems.length}; e.g. ${tunnel.problems.slice(0, 3).join(' | ')}`] : []),
      `ticketbooth: ${crashed ? `CRASHED: ${crashed}` : 'no crash'}; RSS at the end ${rss.rss.toFixed(0)} MiB, peak ${rss.hwm.toFixed(0)} MiB; audit ${audit.lines} lines, ${audit.undefinedClients} with an undefined client address`,
      ...findingLines(verdict, []),
    ];
    return {
      section: {
        name: `Load: ${o.smtp} concurrent SMTP sessions, ${o.tunnels} concurrent tunnel echoes`,
        lines,
        figures: {
          smtpDeliveredOnce: {
            value: smtp.accepted - verdict.lost.length - verdict.duplicated.length - verdict.altered.length,
            unit: `of ${o.smtp}`,
            goal: `${o.smtp}`,
            met: clean(verdict) && smtp.accepted === o.smtp,
          },
          tunnelExact: { value: tunnel.exact, unit: `of ${o.tunnels}`, goal: `${o.tunnels}`, met: tunnel.exact === o.tunnels },
          peakRssMiB: { value: rss.hwm, unit: 'MiB' },
        },
      },
      verdict,
      smtpAccepted: smtp.accepted,
      echoesExact: tunnel.exact,
      crashed,
      ok,
    };
  } finally {
    await tb.stop();
    await echo.stop();
    await sink.stop();
  }
}

/** Resolves every waiter at once when the n-th arrives (or when the time is up). */
function barrier(n: number, ms: number): () => Promise<void> {
  let arrived = 0;
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const timer = setTimeout(open, ms);
  return () => {
    if (++arrived >= n) {
      clearTimeout(timer);
      open();
    }
    return gate;
  };
}

async function smtpLoad(
  tb: Ticketbooth,
  n: number,
  seed: number,
): Promise<{ ledger: Ledger; accepted: number; open: number; seconds: number; problems: string[] }> {
  const ledger = new Ledger();
  const problems: string[] = [];
  const wait = barrier(n, 120_000);
  let open = 0;
  let accepted = 0;
  const started = performance.now();
  const one = async (i: number): Promise<void> => {
    let w: Wire | undefined;
    try {
      w = await Wire.open(tb.port('load'), sourceAddress(i), 60_000);
      const greeting = await w.read(60_000);
      const ehlo = await w.cmd('EHLO load.client.test', 60_000);
      if (codeOf(greeting) !== 220 || codeOf(ehlo) !== 250) problems.push(`#${i}: ${show(greeting)} / ${show(ehlo)}`);
      else open++;
      await wait();
      const id = `load.${seed}.${i}@stress.test`;
      const r = await transact(w, ledger, {
        id,
        kind: 'load',
        session: i,
        from: Buffer.from(`load${i}@client.test`),
        rcpts: [Buffer.from(`r${i}@dest.test`)],
        body: messageBody(id, 'load', [`message ${i} of ${n}`, '.a line that needs dot-stuffing']),
        finalTimeoutMs: 120_000,
      });
      if (r.attempt.outcome === 'accepted') accepted++;
      else problems.push(`#${i}: ${show(r.final ?? r.data ?? r.rcpts.at(-1) ?? r.mail)}`);
      await w.cmd('QUIT', 30_000);
    } catch (err) {
      problems.push(`#${i}: ${(err as Error).message}`);
      await wait();
    } finally {
      w?.close();
    }
  };
  const all = await within(Promise.all(Array.from({ length: n }, (_, i) => one(i))), LOAD_MS);
  if (all === 'timeout') problems.push(`not finished within ${LOAD_MS / 1000} s`);
  return { ledger, accepted, open, seconds: (performance.now() - started) / 1000, problems };
}

async function tunnelLoad(
  tb: Ticketbooth,
  n: number,
  seed: number,
): Promise<{ exact: number; bytes: number; seconds: number; problems: string[] }> {
  const problems: string[] = [];
  const wait = barrier(n, 120_000);
  let exact = 0;
  let bytes = 0;
  const started = performance.now();
  const one = (i: number): Promise<void> =>
    new Promise<void>((resolve) => {
      const payload = Rng.forSession(seed, i).bytes(1 + ((i * 7919) % 65_536));
      bytes += payload.length;
      const got: Buffer[] = [];
      const socket = connect({ host: '127.0.0.1', port: tb.port('tunnel'), localAddress: sourceAddress(i) });
      const done = (problem?: string): void => {
        if (problem) problems.push(`#${i}: ${problem}`);
        socket.destroy();
        resolve();
      };
      socket.on('error', (err) => done(err.message));
      socket.on('data', (c: Buffer) => got.push(c));
      socket.on('end', () => {
        const back = Buffer.concat(got);
        if (back.equals(payload)) exact++;
        else
          problems.push(
            `#${i}: sent ${payload.length} bytes, got back ${back.length}${back.length === payload.length ? ' (different)' : ''}`,
          );
        done();
      });
      socket.once('connect', () => {
        void wait().then(() => socket.end(payload));
      });
    });
  const all = await within(Promise.all(Array.from({ length: n }, (_, i) => one(i))), LOAD_MS);
  if (all === 'timeout') problems.push(`not finished within ${LOAD_MS / 1000} s`);
  return { exact, bytes, seconds: (performance.now() - started) / 1000, problems };
}
