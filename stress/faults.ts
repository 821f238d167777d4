import { table, type Section } from '../bench/section.js';
import { makeCert } from '../test/support/certs.js';
import { freeTcpPort } from '../test/support/ports.js';
import { startFaultServer, type Fault, type FaultServer } from '../test/support/smtp-fault-server.js';
import { ACTIONS, STAGES } from '../test/support/smtp-stage-fault.js';
import { FAULT_TIMEOUTS, smtpListener } from './config.js';
import { Ledger } from './ledger.js';
import { runPool, settled, within } from './pool.js';
import { auditFindings, findingLines } from './report.js';
import { Rng } from './rng.js';
import { Session, type Mismatch } from './session.js';
import { startSink } from './sink.js';
import { startTicketbooth } from './ticketbooth.js';
import type { TxResult } from './transaction.js';
import { check, clean, summary, type Verdict } from './verdict.js';
import { show } from './wire.js';

/**
 * Upstream faults at every stage, each a few times: the next hop refuses the connection, or at the
 * greeting, EHLO, STARTTLS, the handshake, EHLO in TLS, MAIL, RCPT, DATA or the final dot it drops
 * the connection, stalls, answers garbage or 421; plus a drop in the middle of the message, answers
 * out of protocol, and a hop that stores and then drops before its 250 (the documented duplicate).
 * The client must get a 4xx every time (it keeps the mail), never a 250, never silence; the same
 * session then delivers to a healthy hop.
 */
type FaultCase = Fault | 'refuse';

export const FAULT_CASES: FaultCase[] = [
  'refuse',
  ...ACTIONS.flatMap((a) => STAGES.map((s) => `${a}-at-${s}` as const)),
  'drop-in-data',
  'drop-after-storing',
  'tempfail-data',
  'data-250',
  'dot-354',
];

export interface FaultsResult {
  section: Section;
  verdict: Verdict;
  ok: boolean;
}

const domainOf = (f: FaultCase): string => `${f}.fault.test`;

export async function runFaults(o: { repeats: number; seed: number; built?: boolean }): Promise<FaultsResult> {
  const cert = makeCert(['localhost', '127.0.0.1']);
  const healthy = await startSink(cert);
  const hops = new Map<FaultCase, FaultServer | number>();
  for (const f of FAULT_CASES)
    hops.set(f, f === 'refuse' ? await freeTcpPort() : await startFaultServer({ cert, starttls: true, fault: f, name: `${f}.hop.test` }));
  const portOf = (f: FaultCase): number => {
    const h = hops.get(f)!;
    return typeof h === 'number' ? h : h.port;
  };
  const transport = Object.fromEntries(FAULT_CASES.map((f) => [domainOf(f), { mode: 'relay', host: '127.0.0.1', port: portOf(f) }]));
  const tb = await startTicketbooth(
    { listeners: [smtpListener('faults', healthy.port, { transport, timeouts: FAULT_TIMEOUTS })] },
    { built: o.built },
  );
  const ledger = new Ledger();
  const mismatches: Mismatch[] = [];
  const replies = new Map<FaultCase, string[]>();
  const started = Date.now();
  try {
    const jobs = FAULT_CASES.flatMap((f) => Array.from({ length: o.repeats }, () => f));
    await runPool(jobs.length, 8, started + 600_000, async (i) => {
      const f = jobs[i];
      const s = new Session(i, f, Rng.forSession(o.seed, i), ledger, o.seed, tb.port('faults'), mismatches);
      try {
        const done = await within(oneFault(s, f), 60_000);
        if (done === 'timeout') mismatches.push({ session: i, kind: f, what: 'session', got: 'still running after 60 s', want: 'an end' });
        else replies.set(f, [...(replies.get(f) ?? []), done]);
      } catch (err) {
        mismatches.push({ session: i, kind: f, what: 'driver', got: (err as Error).message, want: 'no error' });
      } finally {
        s.abort();
      }
    });
    const servers = [...hops.values()].filter((h): h is FaultServer => typeof h !== 'number');
    const storedAll = () => [healthy, ...servers].reduce((n, h) => n + h.stored.length, 0);
    await settled(storedAll);
    const verdict = check(
      ledger,
      [healthy, ...servers].flatMap((h) => h.stored),
    );
    const crashed = tb.crashed();
    await tb.stop();
    const audit = auditFindings(tb.auditLines());
    const ok = clean(verdict) && mismatches.length === 0 && !crashed;
    const rows = FAULT_CASES.map((f) => [f, tallied(replies.get(f) ?? []), String(mismatches.filter((m) => m.kind === f).length)]);
    const lines = [
      `${FAULT_CASES.length} faults × ${o.repeats} in ${((Date.now() - started) / 1000).toFixed(1)} s (each session then delivers to a healthy hop)`,
      `sinks: ${summary(verdict)}`,
      `replies not as required: ${mismatches.length}`,
      `ticketbooth: ${crashed ? `CRASHED: ${crashed}` : 'no crash'}; audit ${audit.lines} lines, ${audit.undefinedClients} with an undefined client address`,
      ...findingLines(verdict, mismatches),
      '',
      ...table(['fault', 'what the client got (step: reply)', 'wrong'], rows),
    ];
    return {
      section: {
        name: `Faults: ${FAULT_CASES.length} upstream faults × ${o.repeats}`,
        lines,
        figures: {
          cases: { value: FAULT_CASES.length * o.repeats, unit: 'sessions' },
          wrongReplies: {
            value: mismatches.length,
            unit: 'replies',
            goal: '0 (always 4xx, never 250 or silence)',
            met: mismatches.length === 0,
          },
          documentedDuplicates: { value: verdict.documentedDuplicates, unit: 'messages' },
        },
      },
      verdict,
      ok,
    };
  } finally {
    await tb.stop();
    await healthy.stop();
    for (const h of hops.values()) if (typeof h !== 'number') await h.stop();
  }
}

/** One message into the fault: the step that settled it and its reply, e.g. `RCPT: 451 4.4.2`. */
async function oneFault(s: Session, f: FaultCase): Promise<string> {
  const w = await s.ready();
  // Over 200 bytes of message: drop-in-data drops once it has seen that much.
  const r = await s.send(
    w,
    s.tx({ rcpts: [Buffer.from(`r@${domainOf(f)}`)], lines: ['x'.repeat(300), 'y'.repeat(300)], dupAllowed: f === 'drop-after-storing' }),
  );
  const [step, heard] = settledBy(r);
  const code = r.attempt.code;
  if (code < 400 || code >= 500) s.expect(`${step} through the fault`, heard, /^4\d\d /);
  if (r.attempt.outcome !== 'accepted' && !r.final) s.expect('RSET', await w.cmd('RSET'), /^250 /);
  await s.sendValid(w, 'a message to a healthy hop in the same session');
  await s.quit(w);
  return `${step}: ${show(heard).replace(/^(\d{3}(?: \d\.\d\.\d+)?).*$/, '$1')}`;
}

function settledBy(r: TxResult): [string, TxResult['mail']] {
  if (r.final) return ['dot', r.final];
  if (r.data) return ['DATA', r.data];
  if (r.rcpts.length) return ['RCPT', r.rcpts.at(-1)!];
  return ['MAIL', r.mail];
}

function tallied(xs: string[]): string {
  const n = new Map<string, number>();
  for (const x of xs) n.set(x, (n.get(x) ?? 0) + 1);
  return [...n].map(([x, c]) => `${x} ×${c}`).join(', ');
}
