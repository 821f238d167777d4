import { parseArgs } from 'node:util';

export const SECTION_IDS = ['control', 'load', 'fuzz', 'faults', 'memory'] as const;
export type SectionId = (typeof SECTION_IDS)[number];

export interface StressArgs {
  sections: SectionId[];
  seed: number;
  sessions: number;
  only?: number[];
  kinds?: string[];
  concurrency: number;
  load: number;
  tunnels: number;
  faultRepeats: number;
  memorySeconds: number;
  neverReaderMiB: number;
  maxSeconds: number;
  built: boolean;
}

export const USAGE = `npm run stress -- [${SECTION_IDS.join('|')} ...] [options]
  --seed N              fuzz seed (default 1); the same seed replays the same sessions
  --sessions N          fuzz sessions (default 10000)
  --session I[,J...]    replay only these fuzz sessions (indices from a report)
  --kinds A[,B...]      fuzz only these kinds
  --concurrency N       fuzz sessions at a time (default 32)
  --load N              concurrent SMTP sessions in load (default 1000)
  --tunnels N           concurrent tunnel echoes in load (default 1000)
  --fault-repeats N     each upstream fault this many times (default 3)
  --memory-seconds N    steady-delivery run length (default 180)
  --never-reader-mib N  pipelined EHLO bytes from the never-reading client (default 64)
  --max-seconds N       stop starting fuzz sessions after this long (default 1500)
  --built               run dist/src/cli.js (npm run build first) instead of the sources via tsx`;

export function parseStressArgs(argv: string[]): StressArgs {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      seed: { type: 'string' },
      sessions: { type: 'string' },
      session: { type: 'string' },
      kinds: { type: 'string' },
      concurrency: { type: 'string' },
      load: { type: 'string' },
      tunnels: { type: 'string' },
      'fault-repeats': { type: 'string' },
      'memory-seconds': { type: 'string' },
      'never-reader-mib': { type: 'string' },
      'max-seconds': { type: 'string' },
      built: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) throw new Error(USAGE);
  const unknown = positionals.filter((p) => !(SECTION_IDS as readonly string[]).includes(p));
  if (unknown.length > 0) throw new Error(`unknown section(s): ${unknown.join(', ')}\n${USAGE}`);
  const int = (v: string | undefined, dflt: number, name: string): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} wants a whole number, got ${v}`);
    return n;
  };
  return {
    sections: positionals.length > 0 ? (positionals as SectionId[]) : [...SECTION_IDS],
    seed: int(values.seed, 1, 'seed'),
    sessions: int(values.sessions, 10_000, 'sessions'),
    only: values.session?.split(',').map((x) => int(x, 0, 'session')),
    kinds: values.kinds?.split(','),
    concurrency: Math.max(1, int(values.concurrency, 32, 'concurrency')),
    load: int(values.load, 1000, 'load'),
    tunnels: int(values.tunnels, 1000, 'tunnels'),
    faultRepeats: Math.max(1, int(values['fault-repeats'], 3, 'fault-repeats')),
    memorySeconds: int(values['memory-seconds'], 180, 'memory-seconds'),
    neverReaderMiB: int(values['never-reader-mib'], 64, 'never-reader-mib'),
    maxSeconds: int(values['max-seconds'], 1500, 'max-seconds'),
    built: values.built ?? false,
  };
}
