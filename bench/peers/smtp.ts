/**
 * SMTP messages per second with Postfix's `smtp-source` (one message per connection) into a real
 * Postfix destination (STARTTLS, TLS 1.3 only, discard delivery), at 1, 8 and 32 parallel sessions,
 * through three forwarders taking turns rep by rep:
 * - ticketbooth's STARTTLS tunnel (`tunnel --starttls smtp`),
 * - ticketbooth's smarthost (`type: smtp`, relay to the destination, TLS level verify, no connection
 *   cache: a connection per message like the others; the cache has its own section),
 * - stunnel in client mode with `protocol = smtp` (it does the STARTTLS).
 * A run is a fixed number of messages, timed to smtp-source's exit; the forwarder's CPU is charged
 * until Postfix has logged every session's disconnect. Resumed: Postfix's own log.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { missing } from '../../test/support/interop.js';
import type { Postfix } from '../../test/support/postfix.js';
import { median, table, type Figure, type Section } from '../section.js';
import { startDestination } from '../postfix-destination.js';
import { ensureBuilt } from './build.js';
import { startStunnel, startTicketboothSmarthost, startTicketboothTunnel, type Forwarder, type Upstream } from './contenders.js';
import { charged } from './cpu.js';
import { fixed, goalFigure, plainFigure, ratioCell, type Goal } from './figures.js';
import { interleave, pairedRatio, REPS } from './interleave.js';
import { MailLog } from './maillog.js';

/** Messages per run by parallel sessions: about 2.5 s for the slowest contender on a 2-core machine. */
const MESSAGES: Record<number, number> = { 1: 80, 8: 360, 32: 360 };
const BODY_BYTES = 2000;
const CONTENDERS = ['tunnel', 'smarthost', 'stunnel'] as const;
type Contender = (typeof CONTENDERS)[number];
const RATE_GOAL: Goal = { atLeast: 1.0 };
const CPU_GOAL: Goal = { atMost: 1.0 };

const DISCONNECT = /disconnect from /;
const TLS_LINE = /TLS connection established from/;
const RESUMED_LINE = /Reusing old session/;

interface Sample {
  rate: number;
  cpuMs: number;
  tls: number;
  resumed: number;
}

/** `smtp-source` sending `messages` over `sessions` parallel sessions, one message per connection. */
async function smtpSource(f: Forwarder, sessions: number, messages: number): Promise<number> {
  const args = ['-s', String(sessions), '-m', String(messages), '-l', String(BODY_BYTES), '-M', 'legacy.test'];
  args.push('-f', 'a@legacy.test', '-t', 'b@dest.test', `${f.host}:${f.port}`);
  const started = performance.now();
  await promisify(execFile)('smtp-source', args).catch((err: Error & { stderr?: string }) => {
    throw new Error(`smtp-source via ${f.name}: ${err.stderr || err.message}`, { cause: err });
  });
  return (performance.now() - started) / 1000;
}

async function runOnce(f: Forwarder, log: MailLog, sessions: number): Promise<Sample> {
  const messages = MESSAGES[sessions];
  log.mark();
  const { result: seconds, cpu } = await charged(f.pid, async () => {
    const s = await smtpSource(f, sessions, messages);
    if (!(await log.waitFor(DISCONNECT, messages))) throw new Error(`Postfix logged ${log.count(DISCONNECT)} of ${messages} disconnects`);
    return s;
  });
  await log.waitFor(TLS_LINE, messages, 5_000);
  return { rate: messages / seconds, cpuMs: (1000 * cpu) / messages, tls: log.count(TLS_LINE), resumed: log.count(RESUMED_LINE) };
}

export async function run(): Promise<Section> {
  const name = `Peers, SMTP: smtp-source into Postfix (STARTTLS, TLS 1.3), ticketbooth tunnel and smarthost vs stunnel (median of ${REPS} interleaved reps)`;
  const skip = missing('postfix', 'smtp-source', 'stunnel4', 'openssl');
  if (skip) return { name, lines: [`skipped: ${skip}`] };
  const built = await ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'tb-bench-peers-smtp-'));
  let dest: Postfix | undefined;
  const running: Forwarder[] = [];
  try {
    const d = await startDestination(dir);
    dest = d.postfix;
    const { address, cert } = d;
    const up: Upstream = { host: address, port: 25, servername: 'mx.dest.test', cert };
    const keep = <T extends Forwarder>(f: T): T => (running.push(f), f);
    const forwarders: Record<Contender, Forwarder> = {
      tunnel: keep(await startTicketboothTunnel(dir, up, 'smtp')),
      // A connection per message, like the others: the connection cache is measured in bench/connection-cache.ts.
      smarthost: keep(await startTicketboothSmarthost(dir, up, { connectionCache: false })),
      stunnel: keep(await startStunnel(up, 'smtp')),
    };
    const log = new MailLog(join(dest.dir, 'maillog'));
    for (const k of CONTENDERS) await runOnce(forwarders[k], log, 8); // warm-up, not counted

    const rows: string[][] = [];
    const figures: Record<string, Figure> = {};
    const resumed: Record<Contender, { tls: number; resumed: number }> = {
      tunnel: { tls: 0, resumed: 0 },
      smarthost: { tls: 0, resumed: 0 },
      stunnel: { tls: 0, resumed: 0 },
    };
    for (const sessions of Object.keys(MESSAGES).map(Number)) {
      const got = await interleave(CONTENDERS, REPS, (k) => runOnce(forwarders[k], log, sessions));
      const of = (k: Contender, f: 'rate' | 'cpuMs'): number[] => got[k].map((s) => s[f]);
      for (const k of CONTENDERS)
        for (const s of got[k]) {
          resumed[k].tls += s.tls;
          resumed[k].resumed += s.resumed;
        }
      for (const k of CONTENDERS) {
        figures[`s${sessions}_${k}_msg_per_s`] = plainFigure(median(of(k, 'rate')), 'msg/s');
        figures[`s${sessions}_${k}_cpu_ms_per_msg`] = plainFigure(median(of(k, 'cpuMs')), 'CPU ms/msg');
      }
      for (const k of ['tunnel', 'smarthost'] as const) {
        const rate = pairedRatio(of(k, 'rate'), of('stunnel', 'rate'));
        const cpu = pairedRatio(of(k, 'cpuMs'), of('stunnel', 'cpuMs'));
        figures[`s${sessions}_${k}_msg_per_s_over_stunnel`] = goalFigure(rate, 'ratio', RATE_GOAL);
        figures[`s${sessions}_${k}_cpu_per_msg_over_stunnel`] = goalFigure(cpu, 'ratio', CPU_GOAL);
        rows.push([
          `${sessions}`,
          k === 'tunnel' ? 'tb tunnel (--starttls)' : 'tb smarthost',
          fixed(median(of(k, 'rate')), 0),
          fixed(median(of('stunnel', 'rate')), 0),
          ratioCell(rate, RATE_GOAL),
          fixed(median(of(k, 'cpuMs')), 2),
          fixed(median(of('stunnel', 'cpuMs')), 2),
          ratioCell(cpu, CPU_GOAL),
        ]);
      }
    }
    const share = (k: Contender): string => `${k} ${((100 * resumed[k].resumed) / Math.max(1, resumed[k].tls)).toFixed(0)}%`;
    return {
      name,
      lines: [
        ...table(
          [
            'sessions',
            'ticketbooth as',
            'tb msg/s',
            'stunnel msg/s',
            'tb/stunnel',
            'tb CPU ms/msg',
            'stunnel CPU ms/msg',
            'CPU tb/stunnel',
          ],
          rows,
        ),
        `goals (tb/stunnel): msg/s >= ${(RATE_GOAL as { atLeast: number }).atLeast}x, CPU per message <= ${(CPU_GOAL as { atMost: number }).atMost}x; ! = not met. Ratios: median of per-rep ratios.`,
        `messages per run: ${Object.entries(MESSAGES)
          .map(([s, m]) => `${m} at ${s}`)
          .join(', ')} (${BODY_BYTES} B payload, one per connection); CPU: the forwarder process (utime+stime).`,
        `upstream handshakes resumed (Postfix's log): ${CONTENDERS.map(share).join(', ')}. ${built}.`,
      ],
      figures,
    };
  } finally {
    for (const f of running.reverse()) await f.stop().catch(() => undefined);
    await dest?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
