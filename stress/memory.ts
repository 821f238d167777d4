import type { Section } from '../bench/section.js';
import { makeCert } from '../test/support/certs.js';
import { smtpListener } from './config.js';
import { deliver } from './deliver.js';
import { Ledger } from './ledger.js';
import { runNeverReader } from './never-reader.js';
import { settled } from './pool.js';
import { mib } from '../test/support/proc-memory.js';
import { findingLines } from './report.js';
import { startSink } from './sink.js';
import { startTicketbooth } from './ticketbooth.js';
import { check, clean, summary } from './verdict.js';

export interface MemoryOptions {
  seconds: number;
  /** Concurrent senders in the steady run. */
  senders: number;
  neverReaderMiB: number;
  built?: boolean;
}

/** Growth (MiB) between the early plateau and the end of the steady run above which memory is not flat. */
const FLAT_MIB = 10;

/**
 * Memory of the ticketbooth process (VmRSS from /proc, sampled each second): a steady run of
 * deliveries must stay flat; then the never-reading client of issue 8 check 1 (never-reader.ts).
 */
export async function runMemory(o: MemoryOptions): Promise<{ section: Section; ok: boolean }> {
  const cert = makeCert(['localhost', '127.0.0.1']);
  const sink = await startSink(cert);
  const lines: string[] = [];
  let ok: boolean;
  try {
    const tb = await startTicketbooth({ listeners: [smtpListener('steady', sink.port)] }, { built: o.built, admin: true });
    const ledger = new Ledger();
    const samples: Array<{ t: number; rss: number; sent: number }> = [];
    // The process's own view, to tell a leak from a heap V8 has not shrunk: JS heap used and external (Buffers).
    const inside: Array<{ t: number; heap: number; external: number }> = [];
    const started = Date.now();
    const end = started + o.seconds * 1000;
    let sent = 0;
    const sampler = setInterval(() => {
      const t = (Date.now() - started) / 1000;
      samples.push({ t, rss: tb.rss().rss, sent });
      sink.commands.length = 0; // the sink's command log would grow with the run
      if (samples.length % 5 === 0) {
        tb.metrics().then(
          (m) =>
            inside.push({
              t,
              heap: (m.get('nodejs_heap_size_used_bytes') ?? NaN) / 1048576,
              external: (m.get('nodejs_external_memory_bytes') ?? NaN) / 1048576,
            }),
          () => undefined,
        );
      }
    }, 1000);
    let accepted = 0;
    let connections = 0;
    try {
      // Half the senders open a connection per message, half send 20 per connection.
      await Promise.all(
        Array.from({ length: o.senders }, async (_, i) => {
          while (Date.now() < end && !tb.crashed()) {
            const r = await deliver(tb.port('steady'), ledger, 'steady', connections++, i % 2 === 0 ? 1 : 20);
            sent += r.sent;
            accepted += r.accepted;
          }
        }),
      );
    } finally {
      clearInterval(sampler);
    }
    await settled(() => sink.stored.length);
    const verdict = check(ledger, sink.stored);
    const crashed = tb.crashed();
    const peak = tb.rss().hwm;
    await tb.stop();
    const seconds = (Date.now() - started) / 1000;
    const plateau = median(samples.filter((s) => s.t >= seconds * 0.2 && s.t < seconds * 0.3).map((s) => s.rss));
    const last = median(samples.slice(-10).map((s) => s.rss));
    const flat = last - plateau < FLAT_MIB;
    // Growth per message over the second half: a leak is linear in the work done.
    const half = samples.find((s) => s.t >= seconds / 2) ?? samples[0];
    const perThousand = ((last - half.rss) * 1024) / Math.max(1, (samples.at(-1)!.sent - half.sent) / 1000);
    // Lowest heap used in a window: about what is live after a collection.
    const lowest = (from: number, to: number, k: 'heap' | 'external'): number =>
      Math.min(...inside.filter((x) => x.t >= from && x.t < to).map((x) => x[k]));
    ok = clean(verdict) && !crashed && flat && accepted === sent;
    const every = Math.max(1, Math.round(samples.length / 12));
    lines.push(
      `steady: ${sent} messages on ${connections} connections by ${o.senders} senders (half one message per connection, half 20) in ${seconds.toFixed(0)} s (${(sent / seconds).toFixed(0)} msg/s), ${accepted} got 250`,
      `  sink: ${summary(verdict)}`,
      `  RSS: ${mib(samples[0]?.rss ?? NaN)} at 1 s, ${mib(plateau)} at 20-30 % of the run, ${mib(last)} at the end (median of the last 10 s), peak ${mib(peak)}: ${flat ? 'flat' : 'GROWING'} (growth ${mib(last - plateau)}, limit ${FLAT_MIB})`,
      `  RSS every ${every} s: ${samples
        .filter((_, i) => i % every === 0)
        .map((s) => s.rss.toFixed(0))
        .join(' ')} MiB; second half: ${perThousand.toFixed(0)} KiB per 1,000 messages`,
      `  inside (lowest in the window, about what a collection leaves): JS heap used ${mib(lowest(seconds * 0.2, seconds * 0.3, 'heap'))} at 20-30 %, ${mib(lowest(seconds * 0.8, seconds + 1, 'heap'))} in the last 20 %; external ${mib(lowest(seconds * 0.2, seconds * 0.3, 'external'))} → ${mib(lowest(seconds * 0.8, seconds + 1, 'external'))}`,
      `  ticketbooth: ${crashed ? `CRASHED: ${crashed}` : 'no crash'}`,
      ...findingLines(verdict, []).map((l) => `  ${l}`),
    );
    const never = await runNeverReader(sink, o.neverReaderMiB, o.built);
    ok &&= never.ok;
    lines.push(...never.lines);
    return {
      section: {
        name: `Memory: ${o.seconds} s of steady deliveries; a client that never reads`,
        lines,
        figures: { steadyGrowthMiB: { value: last - plateau, unit: 'MiB', goal: `< ${FLAT_MIB}`, met: flat }, ...never.figures },
      },
      ok,
    };
  } finally {
    await sink.stop();
  }
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
