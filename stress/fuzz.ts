import { table, type Section } from '../bench/section.js';
import { makeCert } from '../test/support/certs.js';
import { smtpListener } from './config.js';
import { FUZZ_MAX_MESSAGE } from './fuzz-kind.js';
import { FUZZ_KINDS } from './fuzz-kinds.js';
import { Ledger } from './ledger.js';
import { runPool, settled, within } from './pool.js';
import { Rng } from './rng.js';
import { Session, type Mismatch } from './session.js';
import { startSink } from './sink.js';
import { auditFindings, findingLines } from './report.js';
import { startTicketbooth } from './ticketbooth.js';
import { check, clean, summary, type Verdict } from './verdict.js';
import { sampleMemory, watchAfterLoad } from './after-load.js';
import { setTimeout as sleep } from 'node:timers/promises';

export interface FuzzOptions {
  seed: number;
  sessions: number;
  concurrency: number;
  /** Replay these session indices only. */
  only?: number[];
  /** Only these kinds (names). */
  kinds?: string[];
  maxSeconds: number;
  built?: boolean;
  /** Read memory idle before the load and for 30 s after it (the campaign does; the test slice need not wait). */
  memory?: boolean;
}

export interface FuzzResult {
  section: Section;
  verdict: Verdict;
  mismatches: Mismatch[];
  sessions: number;
  crashed?: string;
  undefinedClients: number;
  ok: boolean;
}

/** The idle figure is read this long after the process listens, as issue 27 measures `serve`. */
const IDLE_AFTER_START_MS = 3000;

/** Per-session ceiling: the slowest kind waits out a few replies, never a minute. */
const SESSION_MS = 60_000;

/** Seeded fuzz: session i plays kind i mod n with its own generator, against a child ticketbooth and a sink. */
export async function runFuzz(o: FuzzOptions): Promise<FuzzResult> {
  const kinds = o.kinds ? FUZZ_KINDS.filter((k) => o.kinds!.includes(k.name)) : FUZZ_KINDS;
  if (kinds.length === 0) throw new Error(`no such kinds: ${o.kinds?.join(', ')}; known: ${FUZZ_KINDS.map((k) => k.name).join(', ')}`);
  const cert = makeCert(['localhost', '127.0.0.1']);
  const sink = await startSink(cert);
  const tb = await startTicketbooth(
    { listeners: [smtpListener('fuzz', sink.port, { maxMessageSize: FUZZ_MAX_MESSAGE })] },
    // admin: the heap and external memory from inside, beside RSS, before and after the load.
    { built: o.built, admin: o.memory },
  );
  const ledger = new Ledger();
  const mismatches: Mismatch[] = [];
  const perKind = new Map<string, number>();
  const indices = o.only ?? Array.from({ length: o.sessions }, (_, i) => i);
  try {
    const idle = o.memory ? await sleep(IDLE_AFTER_START_MS).then(() => sampleMemory(tb, 0)) : undefined;
    const started = Date.now();
    const ran = await runPool(indices.length, o.concurrency, started + o.maxSeconds * 1000, async (n) => {
      const i = indices[n];
      const kind = kinds[i % kinds.length];
      perKind.set(kind.name, (perKind.get(kind.name) ?? 0) + 1);
      const s = new Session(i, kind.name, Rng.forSession(o.seed, i), ledger, o.seed, tb.port('fuzz'), mismatches);
      try {
        const r = await within(kind.run(s), SESSION_MS);
        if (r === 'timeout')
          mismatches.push({
            session: i,
            kind: kind.name,
            what: 'session',
            got: `still running after ${SESSION_MS / 1000} s`,
            want: 'an end',
          });
      } catch (err) {
        mismatches.push({ session: i, kind: kind.name, what: 'driver', got: (err as Error).message, want: 'no error' });
      } finally {
        s.abort();
      }
    });
    await settled(() => sink.stored.length);
    const seconds = (Date.now() - started) / 1000;
    const verdict = check(ledger, sink.stored);
    const memory = idle ? await watchAfterLoad(tb, idle) : { lines: [], figures: {}, ok: true };
    const crashed = tb.crashed();
    await tb.stop();
    const audit = auditFindings(tb.auditLines());
    const ok = clean(verdict) && mismatches.length === 0 && !crashed && audit.undefinedClients === 0 && ran === indices.length && memory.ok;
    const byKind = kinds.map((k) => [
      k.name,
      String(perKind.get(k.name) ?? 0),
      String(mismatches.filter((m) => m.kind === k.name).length),
      String(
        [...verdict.lost, ...verdict.duplicated, ...verdict.altered, ...verdict.phantom].filter((f) => f.kind.startsWith(k.name)).length,
      ),
    ]);
    const lines = [
      `${ran} sessions of ${kinds.length} kinds (seed ${o.seed}, ${o.concurrency} at a time) in ${seconds.toFixed(1)} s${ran < indices.length ? ` — STOPPED at the time limit, ${indices.length - ran} not run` : ''}`,
      `sink: ${summary(verdict)}`,
      `replies not as documented: ${mismatches.length}`,
      `ticketbooth: ${crashed ? `CRASHED: ${crashed}` : 'no crash'}; audit: ${audit.lines} lines, ${audit.undefinedClients} with an undefined client address`,
      ...memory.lines,
      ...findingLines(verdict, mismatches, o.seed),
      '',
      ...table(['kind', 'sessions', 'unexpected replies', 'delivery findings'], byKind),
    ];
    return {
      section: {
        name: `Fuzz: ${ran} SMTP sessions`,
        lines,
        figures: { ...figures(verdict, mismatches.length, ran, seconds), ...memory.figures },
      },
      verdict,
      mismatches,
      sessions: ran,
      crashed,
      undefinedClients: audit.undefinedClients,
      ok,
    };
  } finally {
    await tb.stop();
    await sink.stop();
  }
}

function figures(v: Verdict, mismatches: number, sessions: number, seconds: number): Section['figures'] {
  return {
    sessions: { value: sessions, unit: 'sessions', goal: '>= 10000' },
    lost: { value: v.lost.length, unit: 'messages', goal: '0', met: v.lost.length === 0 },
    duplicated: { value: v.duplicated.length, unit: 'messages', goal: '0', met: v.duplicated.length === 0 },
    altered: { value: v.altered.length, unit: 'messages', goal: '0', met: v.altered.length === 0 },
    phantom: { value: v.phantom.length, unit: 'messages', goal: '0', met: v.phantom.length === 0 },
    unexpectedReplies: { value: mismatches, unit: 'replies', goal: '0', met: mismatches === 0 },
    seconds: { value: seconds, unit: 's' },
  };
}
