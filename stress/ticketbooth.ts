import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProcess, type RunningProcess } from '../test/support/process.js';
import { readRss, type Rss } from '../test/support/proc-memory.js';
import { RUNTIME_FLAGS } from '../scripts/bundle.js';

export const REPO = dirname(dirname(fileURLToPath(import.meta.url)));

/**
 * ticketbooth under test, as its own process (`serve --config`), never in the driver's: its
 * memory is measured alone, and a crash is a process exit the campaign sees instead of its own.
 */
export interface Ticketbooth {
  pid: number;
  /** Listener name → port on 127.0.0.1. */
  port(listener: string): number;
  rss(): Rss;
  /** Why the process is gone while it should run (exit code or signal), else undefined. */
  crashed(): string | undefined;
  auditFile: string;
  /** Audit lines as parsed JSON (complete after stop()). */
  auditLines(): Array<Record<string, unknown>>;
  output(): string;
  /** Unlabelled samples of /metrics (`nodejs_heap_size_used_bytes`...): needs `admin` at start. */
  metrics(): Promise<Map<string, number>>;
  /** SIGTERM, SIGKILL after 3 s; resolves on exit. */
  stop(): Promise<void>;
}

export interface TicketboothOptions {
  /** Run `dist/src/cli.js` (after `npm run build`) instead of the sources through tsx. */
  built?: boolean;
  /** Serve /metrics on an ephemeral loopback port (heap and external memory, seen from inside). */
  admin?: boolean;
}

/** Starts ticketbooth with `config` (listeners on port 0; audit to a file of its own). */
export async function startTicketbooth(
  config: { listeners: Array<{ name: string }> } & Record<string, unknown>,
  opts: TicketboothOptions = {},
): Promise<Ticketbooth> {
  const dir = mkdtempSync(join(tmpdir(), 'tb-stress-'));
  const auditFile = join(dir, 'audit.jsonl');
  const configFile = join(dir, 'config.yaml');
  // JSON is YAML: the schema validates it as it would a hand-written file.
  const admin = opts.admin ? { admin: { listen: '127.0.0.1:0' } } : {};
  writeFileSync(configFile, JSON.stringify({ shutdownTimeoutSeconds: 2, audit: { file: auditFile }, ...admin, ...config }, null, 2));
  // The admin line comes last when there is one.
  const last = opts.admin ? 'admin \\(/metrics, /healthz, /readyz\\)' : config.listeners.at(-1)!.name;
  // With the runtime flags of the CLI's shebang, as `npm start` and the image run it.
  const args = [...RUNTIME_FLAGS, ...(opts.built ? ['dist/src/cli.js'] : ['--import', 'tsx', 'src/cli.ts'])];
  let stopped = false;
  let crash: string | undefined;
  const proc: RunningProcess = await startProcess(process.execPath, [...args, 'serve', '--config', configFile], {
    ready: new RegExp(`ticketbooth: ${last} listening on \\S+:\\d+`),
    cwd: REPO,
    timeoutMs: 30_000,
  });
  const pid = proc.child.pid!;
  const ports = new Map<string, number>();
  for (const m of proc.output().matchAll(/ticketbooth: (\S+) listening on \S+:(\d+)/g)) ports.set(m[1], Number(m[2]));
  return {
    pid,
    port: (name) => {
      const p = ports.get(name);
      if (p === undefined) throw new Error(`no listener ${name}`);
      return p;
    },
    rss: () => readRss(pid),
    crashed: () => (stopped ? crash : exitedAlready(proc)),
    auditFile,
    auditLines: () => {
      let text: string;
      try {
        text = readFileSync(auditFile, 'utf8');
      } catch {
        return [];
      }
      return text
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    output: () => proc.output(),
    metrics: async () => {
      const port = /ticketbooth: admin \(\S+ \S+ \S+\) listening on \S+:(\d+)/.exec(proc.output())?.[1];
      if (!port) throw new Error('ticketbooth was started without admin');
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return new Map([...text.matchAll(/^([a-z_]+) ([\d.e+-]+)$/gm)].map((m) => [m[1], Number(m[2])]));
    },
    stop: async () => {
      if (!stopped) crash = exitedAlready(proc);
      stopped = true;
      await proc.stop();
    },
  };
}

function exitedAlready(proc: RunningProcess): string | undefined {
  const { exitCode, signalCode } = proc.child;
  if (exitCode === null && signalCode === null) return undefined;
  return `exited (${exitCode ?? signalCode}); last output: ${proc.output().slice(-2000)}`;
}
