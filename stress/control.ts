import type { Section } from '../bench/section.js';
import { makeCert } from '../test/support/certs.js';
import type { StoredMessage } from '../test/support/smtp-fault-server.js';
import { smtpListener } from './config.js';
import { closeKinds } from './fuzz-closes.js';
import { dataKinds } from './fuzz-data.js';
import { Ledger } from './ledger.js';
import { settled } from './pool.js';
import { Rng } from './rng.js';
import { Session, type Mismatch } from './session.js';
import { startSink } from './sink.js';
import { startTicketbooth } from './ticketbooth.js';
import { check, type Verdict } from './verdict.js';

/**
 * The negative control: the same checker against sinks that misbehave on purpose. Each case must
 * be caught exactly (its count 1 in its category, 0 elsewhere), or a clean verdict means nothing.
 */
type Counts = Partial<Record<'lost' | 'duplicated' | 'altered' | 'phantom', number>>;

interface ControlCase {
  name: string;
  /** What the faulty sink stores for the i-th message it accepts. */
  tamper?: (m: StoredMessage, i: number) => StoredMessage[];
  /** What it adds to its store after the run (it has the ledger: it can forge any message). */
  forge?: (stored: StoredMessage[], ledger: Ledger) => void;
  /** One extra session of this fuzz kind after the normal messages. */
  extra?: string;
  /** The client talks to the sink directly: a relay that passes everything, bare LFs included. */
  direct?: boolean;
  expect: Counts;
}

const flip = (b: Buffer, at: number): Buffer => {
  const c = Buffer.from(b);
  c[at] = c[at] ^ 0x01;
  return c;
};

const CASES: ControlCase[] = [
  { name: 'a faithful sink (baseline)', expect: {} },
  { name: 'drops one message it answered 250 for', tamper: (m, i) => (i === 2 ? [] : [m]), expect: { lost: 1 } },
  { name: 'stores one message twice', tamper: (m, i) => (i === 3 ? [m, m] : [m]), expect: { duplicated: 1 } },
  {
    name: 'flips one bit of one body',
    tamper: (m, i) => [i === 4 ? { ...m, body: flip(m.body, m.body.length - 5) } : m],
    expect: { altered: 1 },
  },
  {
    name: 'flips one bit of one recipient',
    tamper: (m, i) => [i === 5 ? { ...m, rcptLines: [flip(m.rcptLines[0], m.rcptLines[0].length - 3), ...m.rcptLines.slice(1)] } : m],
    expect: { altered: 1 },
  },
  {
    name: 'invents a message nobody sent',
    forge: (stored) =>
      stored.push({
        ...stored[0],
        body: Buffer.from(
          stored[0].body.toString('latin1').replace(/Message-Id: <[^>]+>/i, 'Message-Id: <invented@stress.test>'),
          'latin1',
        ),
      }),
    expect: { phantom: 1 },
  },
  {
    name: 'stores a message the client abandoned mid-body',
    extra: 'early-close-mid-body',
    forge: (stored, ledger) => {
      // A perfect copy of what the client began: only its being there is wrong.
      const e = [...ledger.entries.values()].find((x) => x.kind === 'early-close-mid-body')!;
      const line = (verb: string, path: Buffer): Buffer => Buffer.concat([Buffer.from(`${verb}<`), path, Buffer.from('>')]);
      stored.push({
        ...stored[0],
        mailLine: line('MAIL FROM:', e.envelope.from),
        rcptLines: e.envelope.rcpts.map((r) => line('RCPT TO:', r)),
        body: e.body,
      });
    },
    expect: { phantom: 1 },
  },
  {
    name: 'a relay that passes bare-LF smuggling (client straight to a lenient sink)',
    direct: true,
    extra: 'smuggling',
    expect: { phantom: 1, altered: 1 },
  },
];

const MESSAGES = 8;

export interface ControlResult {
  section: Section;
  ok: boolean;
}

export async function runControl(o: { seed: number; built?: boolean }): Promise<ControlResult> {
  const cert = makeCert(['localhost', '127.0.0.1']);
  const sinks = await Promise.all(CASES.map((c) => startSink(cert, c.tamper ? { tamper: c.tamper } : {})));
  const tb = await startTicketbooth({ listeners: CASES.map((_, i) => smtpListener(`control${i}`, sinks[i].port)) }, { built: o.built });
  const lines: string[] = [];
  let ok = true;
  try {
    for (const [i, c] of CASES.entries()) {
      const sink = sinks[i];
      const started = performance.now();
      const ledger = new Ledger();
      const mismatches: Mismatch[] = [];
      const port = c.direct ? sink.port : tb.port(`control${i}`);
      const session = (n: number, kind: string): Session =>
        new Session(n, kind, Rng.forSession(o.seed, n), ledger, o.seed, port, mismatches);
      const s = session(0, 'control');
      const w = await s.ready();
      for (let k = 0; k < MESSAGES; k++) await s.sendValid(w, `control message ${k}`);
      await s.quit(w);
      const extra = c.extra && [...dataKinds, ...closeKinds].find((k) => k.name === c.extra);
      if (extra) {
        const x = session(1, extra.name);
        x.closeWaitMs = 200;
        await extra.run(x).finally(() => x.abort());
      }
      await settled(() => sink.stored.length, 500, 5000);
      c.forge?.(sink.stored, ledger);
      const v = check(ledger, sink.stored);
      const got = counts(v);
      const caught = (['lost', 'duplicated', 'altered', 'phantom'] as const).every((k) => got[k] === (c.expect[k] ?? 0));
      ok &&= caught;
      const want =
        Object.entries(c.expect)
          .map(([k, n]) => `${k} ${n}`)
          .join(', ') || 'nothing';
      lines.push(
        `${caught ? 'caught' : 'MISSED'}: ${c.name} — expected ${want}; checker says lost ${got.lost}, duplicated ${got.duplicated}, altered ${got.altered}, phantom ${got.phantom} (${((performance.now() - started) / 1000).toFixed(1)} s)`,
      );
    }
    const crashed = tb.crashed();
    if (crashed) {
      ok = false;
      lines.push(`ticketbooth CRASHED: ${crashed}`);
    }
    return {
      section: {
        name: `Negative control: the checker against ${CASES.length - 1} faulty sinks and a faithful one`,
        lines,
        figures: {
          caught: {
            value: lines.filter((l) => l.startsWith('caught')).length,
            unit: `of ${CASES.length}`,
            goal: `${CASES.length}`,
            met: ok,
          },
        },
      },
      ok,
    };
  } finally {
    await tb.stop();
    await Promise.all(sinks.map((s) => s.stop()));
  }
}

function counts(v: Verdict): Required<Counts> {
  return { lost: v.lost.length, duplicated: v.duplicated.length, altered: v.altered.length, phantom: v.phantom.length };
}
