/**
 * `npm run bench`: every section in order, each a module with `run(): Promise<Section>`; prints a
 * readable report and writes bench/results.json. `npm run bench -- resumption peers-bulk` runs
 * only the named sections. Figures are measured side by side within one run: read the ratios,
 * not the absolute numbers, which depend on the machine.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as auditReport from './audit-report.js';
import * as connectionCache from './connection-cache.js';
import * as dane from './dane.js';
import { benchFleet } from './fleet.js';
import * as handshakeTime from './handshake-time.js';
import { writeMeasured } from './measured.js';
import * as resumption from './resumption.js';
import * as peers from './peers/index.js';
import type { Section } from './section.js';
import * as smtp from './smtp.js';
import * as starttls from './starttls.js';
import * as workers from './workers.js';

interface Entry {
  id: string;
  run(): Promise<Section>;
}

/** Add a section here: an id for the command line and its module's run(). */
const SECTIONS: Entry[] = [
  { id: 'resumption', run: resumption.run },
  { id: 'starttls', run: starttls.run },
  { id: 'handshake-time', run: handshakeTime.run },
  { id: 'smtp', run: smtp.run },
  { id: 'connection-cache', run: connectionCache.runSection },
  { id: 'dane', run: dane.run },
  { id: 'peers-bulk', run: peers.bulk },
  { id: 'peers-connections', run: peers.connections },
  { id: 'peers-smtp', run: peers.smtp },
  { id: 'peers-idle', run: peers.idle },
  { id: 'workers', run: workers.run },
  { id: 'fleet', run: async () => ({ name: 'Fleet mode (shared Redis store)', lines: await benchFleet() }) },
  { id: 'audit-report', run: auditReport.run },
];

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((w) => !SECTIONS.some((s) => s.id === w));
  if (unknown.length > 0) {
    process.stderr.write(`unknown section(s): ${unknown.join(', ')}; known: ${SECTIONS.map((s) => s.id).join(', ')}\n`);
    process.exit(2);
  }
  const chosen = wanted.length > 0 ? SECTIONS.filter((s) => wanted.includes(s.id)) : SECTIONS;
  const results: SectionResult[] = [];
  for (const entry of chosen) {
    const started = performance.now();
    let section: Section;
    let error: string | undefined;
    try {
      section = await entry.run();
    } catch (err) {
      error = err instanceof Error ? (err.stack ?? err.message) : String(err);
      section = { name: entry.id, lines: [`FAILED: ${error.split('\n')[0]}`] };
    }
    const seconds = (performance.now() - started) / 1000;
    results.push({ id: entry.id, seconds, ...section, ...(error ? { error } : {}) });
    process.stdout.write(`\n== ${section.name} (${seconds.toFixed(1)} s)\n${section.lines.map((l) => `   ${l}`).join('\n')}\n`);
  }
  const file = join(dirname(fileURLToPath(import.meta.url)), 'results.json');
  // A run of chosen sections updates only those in the file; the others keep their last figures.
  const sections = wanted.length > 0 ? mergeSections(previousSections(file), results) : results;
  writeFileSync(
    file,
    `${JSON.stringify({ date: new Date().toISOString(), node: process.version, openssl: opensslVersion(), sections }, null, 2)}\n`,
  );
  // docs/measured.md is the one place the figures are shown: made from this file, never by hand.
  writeMeasured();
  process.stdout.write(`\nwrote ${file} and docs/measured.md\n`);
  // Servers and sockets are all closed by now; exit even if a library keeps a timer alive.
  process.exit(results.some((r) => r.error) ? 1 : 0);
}

type SectionResult = Section & { id: string; seconds: number; error?: string };

function previousSections(file: string): SectionResult[] {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { sections?: SectionResult[] };
    return Array.isArray(parsed.sections) ? parsed.sections : [];
  } catch {
    return [];
  }
}

/** Keeps SECTIONS order: fresh results replace old ones by id. */
function mergeSections(old: SectionResult[], fresh: SectionResult[]): SectionResult[] {
  return SECTIONS.map((s) => fresh.find((r) => r.id === s.id) ?? old.find((r) => r.id === s.id)).filter(
    (r): r is SectionResult => r !== undefined,
  );
}

function opensslVersion(): string {
  try {
    return execFileSync('openssl', ['version'], { encoding: 'utf8' }).trim();
  } catch {
    return `node's ${process.versions.openssl}`;
  }
}

await main();
