/**
 * `npm run stress -- [sections] [options]`: the load and fuzz campaign of issue 8 against a child
 * ticketbooth process, with verdicts from the receiving side. Prints each section, writes
 * stress/results.json, exits 1 when any section found something (or failed). See USAGE in args.ts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { writeMeasured } from '../bench/measured.js';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Section } from '../bench/section.js';
import { parseStressArgs, type SectionId, type StressArgs } from './args.js';
import { runControl } from './control.js';
import { runFaults } from './faults.js';
import { runFuzz } from './fuzz.js';
import { runLoad } from './load.js';
import { runMemory } from './memory.js';

interface Outcome {
  section: Section;
  ok: boolean;
}

const RUNNERS: Record<SectionId, (a: StressArgs) => Promise<Outcome>> = {
  control: (a) => runControl({ seed: a.seed, built: a.built }),
  load: (a) => runLoad({ smtp: a.load, tunnels: a.tunnels, seed: a.seed, built: a.built }),
  fuzz: (a) =>
    runFuzz({
      seed: a.seed,
      sessions: a.sessions,
      concurrency: a.concurrency,
      only: a.only,
      kinds: a.kinds,
      maxSeconds: a.maxSeconds,
      built: a.built,
      memory: true,
    }),
  faults: (a) => runFaults({ repeats: a.faultRepeats, seed: a.seed, built: a.built }),
  memory: (a) => runMemory({ seconds: a.memorySeconds, senders: 8, neverReaderMiB: a.neverReaderMiB, built: a.built }),
};

async function main(): Promise<void> {
  let args: StressArgs;
  try {
    args = parseStressArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
  const results: Array<{ id: string; seconds: number; ok: boolean; error?: string } & Section> = [];
  for (const id of args.sections) {
    const started = performance.now();
    let outcome: Outcome;
    let error: string | undefined;
    try {
      outcome = await RUNNERS[id](args);
    } catch (err) {
      error = err instanceof Error ? (err.stack ?? err.message) : String(err);
      outcome = { section: { name: id, lines: [`FAILED: ${error}`] }, ok: false };
    }
    const seconds = (performance.now() - started) / 1000;
    results.push({ id, seconds, ok: outcome.ok, ...outcome.section, ...(error ? { error } : {}) });
    const verdict = outcome.ok ? 'clean' : 'FINDINGS';
    process.stdout.write(
      `\n== ${outcome.section.name} (${seconds.toFixed(1)} s): ${verdict}\n${outcome.section.lines.map((l) => `   ${l}`).join('\n')}\n`,
    );
  }
  const file = join(dirname(fileURLToPath(import.meta.url)), 'results.json');
  // A run of some sections keeps the figures of the others from the last run that had them.
  const sections = [...earlierSections(file).filter((s) => !args.sections.includes(s.id as SectionId)), ...results];
  writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, args, sections }, null, 2)}\n`);
  writeMeasured(); // docs/measured.md shows these figures, made from this file
  process.stdout.write(`\nwrote ${file}\n`);
  // Every server and child is stopped by now; exit even if a library keeps a timer alive.
  process.exit(results.every((r) => r.ok) ? 0 : 1);
}

/** The sections of the last run, each with the date it ran. */
function earlierSections(file: string): Array<{ id: string; date: string }> {
  try {
    const earlier = JSON.parse(readFileSync(file, 'utf8')) as { date: string; sections: Array<{ id: string; date?: string }> };
    return earlier.sections.map((s) => ({ ...s, date: s.date ?? earlier.date }));
  } catch {
    return [];
  }
}

await main();
