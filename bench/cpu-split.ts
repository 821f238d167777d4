/**
 * Where ticketbooth's CPU per connection goes: `node --import tsx bench/cpu-split.ts [groups]`
 * runs the peers-connections load (500 sequential, then 2,000 at 32 in flight, each its own
 * ticketbooth process under `--cpu-prof`) and prints each part's share of the profile, scaled to
 * the process's CPU per connection from /proc (user and system shown apart).
 *
 * A sample goes to the part of the innermost product frame on its stack (a file under src/, found
 * through the bundle's source maps), else to
 * the Node internals it is in (node:tls, sockets and streams), else to what V8 calls it: `(program)`
 * is native work with no JS frame on the stack (OpenSSL's handshake crypto run from libuv's read
 * callback, syscalls), `(garbage collector)` is GC.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { SourceMap } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeCert } from '../test/support/certs.js';
import { ensureBuilt } from './peers/build.js';
import { startTicketboothTunnelServe, type Upstream, upstreamOf } from './peers/contenders.js';
import { cpuTimes } from './peers/cpu.js';
import { load } from './peers/load.js';
import { viaForwarder } from './peers/routes.js';
import { startNodeServer } from './peers/servers.js';
import { table } from './section.js';

/** Product files by part, first match wins (paths under src/). */
const PARTS: Array<[RegExp, string]> = [
  [/^(net\/|listeners\/listener\.ts|listeners\/tunnel\/(index|serve)\.ts|service\/|workers\/)/, 'accept and admission'],
  [/^listeners\/tunnel\/(forward|upstream-reader)\.ts/, 'relay'],
  [/^(resumption\/|upstream\/(tls-target|secure-context|session-intake)\.ts|util\/(bounded-map|digest)\.ts)/, 'trust key and cache'],
  [/^upstream\/(tls-dialer|tcp-connect|handshake-outcome|error-code|record-failure)\.ts/, 'handshake (dialer)'],
  [/^(audit\/|upstream\/handshake-line\.ts)/, 'audit'],
  [/^admin\/metrics\.ts/, 'metrics'],
];
const NODE_PARTS: Array<[RegExp, string]> = [
  [/^node:(_tls_wrap|tls|_tls_common|internal\/tls)/, 'node:tls (handshake, JS side)'],
  [/^node:(net|internal\/stream_base_commons|internal\/streams|stream|internal\/net)/, 'node: sockets and streams'],
];

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** CLOCK_MONOTONIC in microseconds: the clock of a V8 profile's timestamps, the same in every process. */
const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

const maps = new Map<string, SourceMap | undefined>();

/** The file under src/ (`x/y.ts`) a frame of the bundle runs, from its chunk's source map; undefined for dependencies and Node. */
function productFile(f: ProfileNode['callFrame']): string | undefined {
  if (!f.url.includes('/dist/src/')) return undefined;
  if (!maps.has(f.url)) {
    try {
      maps.set(
        f.url,
        new SourceMap(JSON.parse(readFileSync(`${fileURLToPath(f.url)}.map`, 'utf8')) as ConstructorParameters<typeof SourceMap>[0]),
      );
    } catch {
      maps.set(f.url, undefined);
    }
  }
  const entry = maps.get(f.url)?.findEntry(f.lineNumber, f.columnNumber);
  const source = entry && 'originalSource' in entry ? entry.originalSource : '';
  return source.includes('/node_modules/') ? undefined : /(?:^|\/)src\/(.*\.ts)$/.exec(source)?.[1];
}

function partOf(stack: ProfileNode[]): string {
  for (const n of stack) {
    const file = productFile(n.callFrame);
    if (file) return PARTS.find(([re]) => re.test(file))?.[1] ?? `other product (${file})`;
  }
  for (const n of stack) {
    const part = NODE_PARTS.find(([re]) => re.test(n.callFrame.url))?.[1];
    if (part) return part;
  }
  const leaf = stack[0].callFrame.functionName;
  return leaf.startsWith('(') ? leaf : 'other node internals';
}

/** Microseconds per part and per leaf frame (self time), idle left out, for samples taken in `window`. */
function split(profile: Profile, window: [number, number]): { parts: Map<string, number>; leaves: Map<string, number> } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, ProfileNode>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n);
  const partById = new Map<number, string>();
  const parts = new Map<string, number>();
  const leaves = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, us: number): void => void m.set(k, (m.get(k) ?? 0) + us);
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    t += us;
    if (t < window[0] || t > window[1]) return;
    let part = partById.get(id);
    if (part === undefined) {
      const stack: ProfileNode[] = [];
      for (let n = byId.get(id); n; n = parent.get(n.id)) stack.push(n);
      part = partOf(stack);
      partById.set(id, part);
    }
    if (part === '(idle)') return;
    add(parts, part, us);
    const f = byId.get(id)?.callFrame;
    if (f) add(leaves, `${f.functionName || '(anonymous)'} ${productFile(f) ? `src/${productFile(f)}` : f.url}`, us);
  });
  return { parts, leaves };
}

/** Rows of a map's entries by size: share of `total`, and that share of `cpuMs`. */
function rowsOf(m: Map<string, number>, total: number, cpuMs: number, limit = Infinity): string[][] {
  return [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([k, us]) => [k, `${((100 * us) / total).toFixed(1)}%`, ((us / total) * cpuMs).toFixed(3)]);
}

async function measure(dir: string, up: Upstream, groups: string | undefined, count: number, inFlight: number): Promise<string[]> {
  const profDir = mkdtempSync(join(dir, 'prof-'));
  const tb = await startTicketboothTunnelServe(dir, up, { groups, nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${profDir}`] });
  const route = viaForwarder(tb);
  await load(route, 100, 1); // warm-up: tickets in the cache, code optimised
  const before = cpuTimes(tb.pid);
  const window: [number, number] = [nowUs(), NaN];
  await load(route, count, inFlight);
  window[1] = nowUs();
  const after = cpuTimes(tb.pid);
  await tb.stop();
  const [file] = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
  const { parts, leaves } = split(JSON.parse(readFileSync(join(profDir, file), 'utf8')) as Profile, window);
  const user = (1000 * (after.user - before.user)) / count;
  const system = (1000 * (after.system - before.system)) / count;
  // Shares of the load's samples, applied to the load's CPU from /proc.
  const total = [...parts.values()].reduce((a, b) => a + b, 0);
  const head = `${inFlight === 1 ? 'sequential' : `${inFlight} in flight`}, ${count} connections, groups ${groups ?? "Node's default"}`;
  const cpu = `CPU per connection ${(user + system).toFixed(3)} ms (user ${user.toFixed(3)}, system ${system.toFixed(3)}), under --cpu-prof`;
  return [
    head,
    cpu,
    ...table(['part', 'share', 'ms/conn'], rowsOf(parts, total, user + system)),
    '',
    ...table(['top frames (self time)', 'share', 'ms/conn'], rowsOf(leaves, total, user + system, 15)),
    '',
  ];
}

async function main(): Promise<void> {
  const groups = process.argv[2];
  process.stdout.write(`${await ensureBuilt()}\n`);
  const dir = mkdtempSync(join(tmpdir(), 'tb-cpu-split-'));
  const cert = makeCert(['localhost'], dir);
  const server = await startNodeServer(cert);
  try {
    const up = upstreamOf(server, cert);
    for (const [count, inFlight] of [
      [500, 1],
      [2000, 32],
    ])
      process.stdout.write(`${(await measure(dir, up, groups, count, inFlight)).join('\n')}\n`);
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
