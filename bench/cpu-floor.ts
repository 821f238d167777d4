/**
 * Ticketbooth's CPU per connection against the floor, in one interleaved run:
 * `node --import tsx bench/cpu-floor.ts [OTHER_CLI] [reps] [sequential] [in32]` runs the
 * peers-connections load (sequential, then 32 in flight) through ticketbooth (dist/, built if
 * stale), optionally a second build of it (OTHER_CLI, e.g. a copy of an earlier dist/src/cli.js,
 * for an A/B of a change), the bare Node TLS client and the minimal Node forwarder
 * (peers/minimal-forwarder-main.ts), rep by rep, and prints each one's CPU per connection (utime +
 * stime from /proc) and the median of per-rep ratios over the bare client.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeCert } from '../test/support/certs.js';
import { startProcess } from '../test/support/process.js';
import { CLI, ensureBuilt, NODE_FLAGS } from './peers/build.js';
import { startBareClient, type Upstream, upstreamOf } from './peers/contenders.js';
import { charged } from './peers/cpu.js';
import { pairedRatio } from './peers/interleave.js';
import { load } from './peers/load.js';
import { viaForwarder } from './peers/routes.js';
import { startNodeServer } from './peers/servers.js';
import { median, table } from './section.js';

interface Runner {
  pid: number;
  load(count: number, inFlight: number): Promise<unknown>;
  stop(): Promise<void>;
}

/** A forwarder process (its args), loaded through its plaintext port. */
async function forwarder(args: string[]): Promise<Runner> {
  const proc = await startProcess(process.execPath, [...NODE_FLAGS, ...args], {
    ready: /listening on 127\.0\.0\.1:(\d+)/,
    timeoutMs: 20_000,
  });
  const route = viaForwarder({
    name: 'ticketbooth',
    host: '127.0.0.1',
    port: Number(proc.ready[1]),
    pid: proc.child.pid ?? NaN,
    stop: () => proc.stop(),
  });
  return { pid: proc.child.pid ?? NaN, load: (count, inFlight) => load(route, count, inFlight), stop: () => proc.stop() };
}

async function startAll(dir: string, up: Upstream, other: string | undefined): Promise<Map<string, Runner>> {
  const tunnel = (cli: string, n: string): string[] => {
    const args = [cli, 'tunnel', '--listen', '127.0.0.1:0', '--connect', `${up.host}:${up.port}`, '--servername', up.servername];
    return [...args, '--ca', up.cert.certFile, '--audit-log', join(dir, `audit-${n}.jsonl`)];
  };
  const minimal = fileURLToPath(new URL('./peers/minimal-forwarder-main.ts', import.meta.url));
  const runners = new Map<string, Runner>([['ticketbooth', await forwarder(tunnel(CLI, 'tb'))]]);
  if (other) runners.set('other build', await forwarder(tunnel(other, 'other')));
  runners.set('bare', await startBareClient(up));
  runners.set(
    'minimal forwarder',
    await forwarder(['--import', 'tsx', minimal, up.host, String(up.port), up.servername, up.cert.certFile]),
  );
  return runners;
}

async function main(): Promise<void> {
  const [other, reps = '5', sequential = '500', in32 = '2000'] = process.argv.slice(2);
  process.stdout.write(`${await ensureBuilt()}\n`);
  const dir = mkdtempSync(join(tmpdir(), 'tb-cpu-floor-'));
  const cert = makeCert(['localhost'], dir);
  const server = await startNodeServer(cert);
  const up = upstreamOf(server, cert);
  const runners = await startAll(dir, up, other || undefined);
  try {
    for (const r of runners.values()) await r.load(100, 1); // warm-up: tickets cached, code optimised
    for (const [count, inFlight] of [
      [Number(sequential), 1],
      [Number(in32), 32],
    ]) {
      const ms = new Map([...runners.keys()].map((k) => [k, [] as number[]]));
      for (let rep = 0; rep < Number(reps); rep++) {
        for (const [k, r] of runners) ms.get(k)?.push((1000 * (await charged(r.pid, () => r.load(count, inFlight))).cpu) / count);
      }
      const bare = ms.get('bare') ?? [];
      const rows = [...ms].map(([k, v]) => [
        k,
        median(v).toFixed(3),
        `${pairedRatio(v, bare).toFixed(2)}x`,
        v.map((x) => x.toFixed(2)).join(' '),
      ]);
      process.stdout.write(`${inFlight === 1 ? 'sequential' : `${inFlight} in flight`}, ${count} connections, ${reps} interleaved reps\n`);
      process.stdout.write(`${table(['contender', 'CPU ms/conn', 'over bare', 'per rep'], rows).join('\n')}\n\n`);
    }
  } finally {
    for (const r of runners.values()) await r.stop().catch(() => undefined);
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
