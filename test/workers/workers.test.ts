import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { HandshakeEvent } from '../../src/audit/events.js';
import { makeCert, type CertPair } from '../support/certs.js';
import { missing } from '../support/interop.js';
import { sample } from '../support/metrics.js';
import { startProcess, type RunningProcess } from '../support/process.js';
import { startHaproxy, startSServer, verdictPlain, type SServer } from '../support/servers.js';
import { until } from '../support/until.js';

/**
 * `workers: 2` through the real CLI: two worker processes behind one listening socket, sharing the
 * primary's ticket cache. The destination is an anti-replay `openssl s_server` (a reused TLS 1.3
 * ticket gets a full handshake): its page says `Reused` or `New`, its own verdict.
 */

const skip = missing('openssl');

function yaml(server: SServer, cert: CertPair, dir: string, extra: string[] = []): string {
  const upstream = `{ host: 127.0.0.1, port: ${server.port}, servername: localhost, ca: ${cert.certFile} }`;
  return [
    'workers: 2',
    'listeners:',
    `  - { name: tun, type: tunnel, listen: "127.0.0.1:0", upstream: ${upstream} }`,
    ...extra.map((name) => `  - { name: ${name}, type: tunnel, listen: "127.0.0.1:0", upstream: ${upstream} }`),
    `audit: { file: ${join(dir, 'audit.jsonl')} }`,
    'admin: { listen: "127.0.0.1:0" }',
    'shutdownTimeoutSeconds: 5',
    '',
  ].join('\n');
}

/** The primary's children that are its workers (tsx may have a child of its own). */
function workerPids(primary: number): number[] {
  const children = readdirSync(`/proc/${primary}/task`).flatMap((t) =>
    readFileSync(`/proc/${primary}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number),
  );
  return children.filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes('TICKETBOOTH_WORKER=1');
    } catch {
      return false; // ended meanwhile
    }
  });
}

/** Every line of the audit file, each parsed whole: a torn or interleaved line fails here. */
function auditLines(dir: string): HandshakeEvent[] {
  const file = join(dir, 'audit.jsonl');
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as HandshakeEvent)
    .filter((e) => e.event === 'tls.handshake');
}

/** `ticketbooth serve` through the CLI on this config file; ready once `tun` listens (and admin, when configured). */
function serve(file: string, admin: boolean): Promise<RunningProcess> {
  const ready =
    /tun listening on 127\.0\.0\.1:(\d+)/.source +
    (admin ? /[^]*admin \(\/metrics, \/healthz, \/readyz\) listening on (127\.0\.0\.1:\d+)/.source : '');
  return startProcess(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve', '-c', file], {
    ready: new RegExp(ready),
    group: true,
    timeoutMs: 30_000,
  });
}

describe('workers: 2', { skip }, () => {
  let cert: CertPair;
  let server: SServer;
  let tb: RunningProcess;
  let dir: string;
  let port: number;
  let admin: string;
  const metrics = async (): Promise<string> => (await fetch(`${admin}/metrics`)).text();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tb-workers-'));
    cert = makeCert(['localhost'], dir);
    server = await startSServer('tls13-anti-replay', cert);
    writeFileSync(join(dir, 'tb.yaml'), yaml(server, cert, dir));
    tb = await serve(join(dir, 'tb.yaml'), true);
    port = Number(tb.ready[1]);
    admin = `http://${tb.ready[2]}`;
  });
  after(async () => {
    await tb?.stop();
    await server?.stop();
  });

  test('8×10 concurrent rounds: ≥ 95% resumed by the server, no ticket offered twice, every audit line whole', async () => {
    assert.match(tb.output(), /2 workers serving the listeners/);
    assert.equal(workerPids(tb.child.pid!).length, 2);
    const round = (): Promise<string[]> => Promise.all(Array.from({ length: 8 }, async () => (await verdictPlain(port)).verdict));
    const stocking = await round(); // stocks the slot: full handshakes (the later ones may resume), 2 tickets each
    const verdicts: string[] = [];
    for (let r = 0; r < 10; r++) verdicts.push(...(await round()));
    const reused = verdicts.filter((v) => v === 'Reused').length;
    assert.ok(reused >= 76, `the server resumed ${reused} of 80`);

    // The primary writes every worker's lines (after up to two 100 ms batching windows).
    await until(
      () => auditLines(dir).length === 88,
      10_000,
      () => `88 handshake lines, have ${auditLines(dir).length}`,
    );
    const lines = auditLines(dir);
    const offered = lines.filter((e) => e.offered === 'tls13-ticket').map((e) => e.offeredHash);
    assert.equal(new Set(offered).size, offered.length, `a ticket was offered twice: ${offered.join(' ')}`);
    const allReused = reused + stocking.filter((v) => v === 'Reused').length;
    assert.equal(lines.filter((e) => e.resumed).length, allReused, 'the audit says what the server saw');
    assert.ok(!lines.some((e) => e.fullCause === 'refused'), 'a ticket was refused as reused');
    const text = await metrics();
    assert.equal(sample(text, 'ticketbooth_workers'), 2);
    const handshakes = (resumed: string): number =>
      sample(text, 'ticketbooth_tls_handshakes_total', {
        listener: 'tun',
        protocol: 'TLSv1.3',
        resumed,
        offered: resumed === 'true' ? 'tls13-ticket' : 'none',
      }) ?? 0;
    assert.equal(handshakes('true'), allReused, 'the metrics sum both workers');
  });

  test('SIGHUP adds a listener in both workers; SIGUSR2 replaces them under load; a killed worker is started again; SIGTERM exits 0', async () => {
    writeFileSync(join(dir, 'tb.yaml'), yaml(server, cert, dir, ['tun2']));
    const before = tb.output().length;
    process.kill(tb.child.pid!, 'SIGHUP');
    await until(() => /reloaded: added tun2 on 127\.0\.0\.1:\d+/.test(tb.output().slice(before)), 10_000, 'the reload line');
    const port2 = Number(/added tun2 on 127\.0\.0\.1:(\d+)/.exec(tb.output().slice(before))![1]);
    assert.match(tb.output().slice(before), /in each of 2 workers/);
    for (const v of await Promise.all(Array.from({ length: 8 }, () => verdictPlain(port2)))) assert.match(v.verdict, /New|Reused/);
    let expected = 88 + 8; // handshake lines so far: one per connection, whichever worker served it
    const allLines = (): Promise<void> =>
      until(
        () => auditLines(dir).length === expected,
        10_000,
        () => `${expected} handshake lines, have ${auditLines(dir).length}`,
      );

    // A rolling restart while 4 clients keep connecting: none of their connections fails.
    const old = workerPids(tb.child.pid!);
    let rolling = true;
    const outcomes: string[] = [];
    const client = async (): Promise<void> => {
      while (rolling)
        outcomes.push(
          await verdictPlain(port).then(
            (v) => v.verdict,
            (err: Error) => `failed: ${err.message}`,
          ),
        );
    };
    const clients = Array.from({ length: 4 }, client);
    const mark = tb.output().length;
    process.kill(tb.child.pid!, 'SIGUSR2');
    await until(() => /2 new workers serving; the old ones drain/.test(tb.output().slice(mark)), 30_000, 'the rolling restart');
    await until(() => old.every((pid) => !workerPids(tb.child.pid!).includes(pid)), 15_000, 'the old workers to end');
    const seen = outcomes.length;
    await until(() => outcomes.length >= seen + 8, 15_000, 'connections to the new workers');
    rolling = false;
    await Promise.all(clients);
    assert.deepEqual(
      outcomes.filter((o) => o.startsWith('failed')),
      [],
    );
    // The old workers have ended: each of their lines reached the primary before they did.
    expected += outcomes.length;
    await allLines();
    const fresh = workerPids(tb.child.pid!);
    assert.equal(fresh.length, 2);
    assert.ok(
      fresh.every((pid) => !old.includes(pid)),
      `old ${old.join(',')} new ${fresh.join(',')}`,
    );

    // A worker killed outright: said on stderr, counted, replaced; the listener keeps serving.
    const killed = tb.output().length;
    process.kill(fresh[0], 'SIGKILL');
    await until(() => new RegExp(`worker ${fresh[0]} ended unasked \\(SIGKILL\\)`).test(tb.output().slice(killed)), 10_000, 'the notice');
    await until(async () => sample(await metrics(), 'ticketbooth_workers') === 2, 15_000, 'a second worker again');
    assert.equal(sample(await metrics(), 'ticketbooth_worker_trouble_total', { kind: 'restarted' }), 1);
    assert.match((await verdictPlain(port)).verdict, /New|Reused/);

    // SIGTERM as soon as 8 more connections are done: their lines, made after the sockets close, still arrive.
    for (const v of await Promise.all(Array.from({ length: 8 }, () => verdictPlain(port)))) assert.match(v.verdict, /New|Reused/);
    const exit = new Promise<number | null>((resolve) => tb.child.once('exit', (code) => resolve(code)));
    process.kill(tb.child.pid!, 'SIGTERM');
    assert.equal(await exit, 0);
    assert.equal(auditLines(dir).length, expected + 1 + 8, "every line, whole, none lost at the workers' exits");
  });
});

describe('workers: 2, a version-mixed destination', { skip: missing('openssl', 'haproxy') }, () => {
  test("haproxy over a TLS 1.2 and a TLS 1.3 node, 8 concurrent × 10 rounds: rounds 2-10 resume at least half by the servers' word", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tb-workers-mixed-'));
    const cert = makeCert(['localhost'], dir);
    const a = await startSServer('tls12-tickets', cert);
    const b = await startSServer('tls13-anti-replay', cert);
    const lb = await startHaproxy([a, b]);
    const upstream = `{ host: ${lb.host}, port: ${lb.port}, servername: localhost, ca: ${cert.certFile} }`;
    writeFileSync(
      join(dir, 'tb.yaml'),
      `workers: 2\nlisteners:\n  - { name: tun, type: tunnel, listen: "127.0.0.1:0", upstream: ${upstream} }\n`,
    );
    const tb = await serve(join(dir, 'tb.yaml'), false);
    try {
      const port = Number(tb.ready[1]);
      const rounds: string[][] = [];
      for (let r = 0; r < 10; r++)
        rounds.push(await Promise.all(Array.from({ length: 8 }, async () => (await verdictPlain(port)).verdict)));
      // The same bound as one process (test/resumption/version-mixed.test.ts): the version order is
      // one, in the primary, and each worker connects before the next offer to the destination leaves.
      const resumed = rounds
        .slice(1)
        .flat()
        .filter((v) => v === 'Reused').length;
      assert.ok(resumed >= 36, `rounds 2-10 resumed ${resumed}/72`);
    } finally {
      await tb.stop();
      await lb.stop();
      await a.stop();
      await b.stop();
    }
  });
});
