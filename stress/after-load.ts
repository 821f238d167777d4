import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Section } from '../bench/section.js';
import { mib } from '../test/support/proc-memory.js';
import type { Ticketbooth } from './ticketbooth.js';

/** Seconds after the load ends by which RSS must be back within RETURN_FACTOR × idle (issue 27, item 6). */
const RETURN_S = 30;
const RETURN_FACTOR = 2;
const EVERY_S = 5;

export interface MemorySample {
  t: number;
  rss: number;
  /** Of rss, pages backed by files (the node binary's code touched so far), not anonymous memory. */
  file: number;
  /** Of rss, the main malloc arena ([heap], where OpenSSL and Node's C++ allocate on the main thread). */
  brk: number;
  /** From the process's own /metrics: V8 heap used and committed, external (Buffers, native ArrayBuffers), MiB. */
  heap: number;
  heapTotal: number;
  external: number;
}

/** RSS and the heap seen from inside, now. */
export async function sampleMemory(tb: Ticketbooth, t: number): Promise<MemorySample> {
  const m = await tb.metrics().catch(() => new Map<string, number>());
  const inMiB = (name: string): number => (m.get(name) ?? NaN) / 1048576;
  const status = readFileSync(`/proc/${tb.pid}/status`, 'utf8');
  const file = Number(/^RssFile:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) / 1024;
  return {
    t,
    rss: tb.rss().rss,
    file,
    brk: brkMiB(tb.pid),
    heap: inMiB('nodejs_heap_size_used_bytes'),
    heapTotal: inMiB('nodejs_heap_size_total_bytes'),
    external: inMiB('nodejs_external_memory_bytes'),
  };
}

/**
 * Memory given back after a load: RSS (and heap/external) when the load ended and every EVERY_S
 * seconds for RETURN_S seconds, measured against the idle figure taken before the load.
 */
export async function watchAfterLoad(
  tb: Ticketbooth,
  idle: MemorySample,
): Promise<{ lines: string[]; figures: NonNullable<Section['figures']>; ok: boolean }> {
  const samples: MemorySample[] = [];
  const started = Date.now();
  for (let s = 0; s <= RETURN_S; s += EVERY_S) {
    await sleep(Math.max(0, started + s * 1000 - Date.now()));
    samples.push(await sampleMemory(tb, s));
  }
  const last = samples.at(-1)!;
  const ok = last.rss <= RETURN_FACTOR * idle.rss;
  const row = (x: MemorySample): string =>
    `${x.rss.toFixed(0)} (file ${x.file.toFixed(0)}, malloc [heap] ${x.brk.toFixed(0)}, heap ${x.heap.toFixed(0)}/${x.heapTotal.toFixed(0)}, external ${x.external.toFixed(0)})`;
  const lines = [
    `memory: idle ${row(idle)} MiB before the load; after it, RSS (file-backed, main malloc arena, V8 heap used/committed, external) every ${EVERY_S} s: ${samples.map(row).join(', ')}`,
    `  ${RETURN_S} s after the load: ${mib(last.rss)}, ${(last.rss / idle.rss).toFixed(2)}× idle — ${ok ? 'within' : 'OVER'} ${RETURN_FACTOR}×`,
  ];
  const figures: NonNullable<Section['figures']> = {
    idleRssMiB: { value: idle.rss, unit: 'MiB' },
    rssAtLoadEndMiB: { value: samples[0].rss, unit: 'MiB' },
    heapAtLoadEndMiB: { value: samples[0].heap, unit: 'MiB' },
    rssAfter30sMiB: { value: last.rss, unit: 'MiB', goal: `<= ${RETURN_FACTOR}x idle`, met: ok },
    heapAfter30sMiB: { value: last.heap, unit: 'MiB' },
    heapCommittedAfter30sMiB: { value: last.heapTotal, unit: 'MiB' },
    fileBackedAfter30sMiB: { value: last.file, unit: 'MiB' },
    mallocBrkAfter30sMiB: { value: last.brk, unit: 'MiB' },
  };
  return { lines, figures, ok };
}

/** Resident size of the [heap] mapping (glibc's main arena, grown by brk), MiB. */
function brkMiB(pid: number): number {
  const smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  const at = smaps.indexOf(' [heap]\n');
  if (at < 0) return 0;
  return Number(/^Rss:\s+(\d+) kB/m.exec(smaps.slice(at))?.[1] ?? NaN) / 1024;
}
