import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { RedisTicketStore } from '../../src/resumption/redis-store.js';
import { makeCert } from '../support/certs.js';
import { missing } from '../support/interop.js';
import { sample } from '../support/metrics.js';
import { startPskWitness, type PskWitness } from '../support/psk-witness.js';
import { startSentinelCluster, type SentinelCluster } from '../support/redis-sentinel.js';
import { startSServer, verdictPlain, type SServer } from '../support/servers.js';
import { storeContract } from '../support/store-contract.js';
import { startTunnelService, type TunnelHarness } from '../support/tunnel-service.js';

/**
 * Redis high availability: the store behind a real Sentinel group (a primary, one replica, three
 * sentinels, quorum 2, all with passwords) while clients keep connecting through a tunnel to
 * `openssl s_server -tls1_3 -max_early_data 16384 -www` (anti-replay: a ticket offered twice is
 * refused; its page is the server's own New/Reused verdict). The replica is cut off (CLIENT KILL
 * TYPE replica, and a wrong masterauth), sixteen connections start at once, then the primary is
 * killed (-9); the sentinels promote the replica and announce it (`+switch-master` in their logs). No client
 * connection may fail (the store degrades to full handshakes), and resumption must be back above
 * 90% within 10 s of the promotion. A relay in front of s_server records the ticket of each
 * ClientHello it passes (psk-witness.ts): tickets offered twice, as the destination saw them. With
 * `replicaAck` (WAIT for the replica after each take) there must be none; without it, the takes the
 * primary ran alone come back with the promotion, and their tickets are offered again.
 */

const skip = missing('redis-server', 'redis-sentinel', 'openssl');

/** Clients connecting at once, each one connection after the other for the whole test. */
const LOOPS = 3;
/** Connections at once while the replica is cut off: more than the slot holds (ticketsPerDestination 8), so it is drained. */
const BURST = 16;
/** Resumption is judged in buckets of this many ms after the promotion. */
const BUCKET_MS = 500;
/** How long clients keep connecting after the promotion. */
const AFTER_MS = 10_000;
const DATA_PASSWORD = 'data-nodes-Pa55';
const SENTINEL_PASSWORD = 'sentinels-Pa55';

/** The store contract through Sentinel (its own group, stopped before the failover test starts one). */
describe('redis store behind Sentinel', () => {
  let group: SentinelCluster | undefined;
  let prefixes = 0;
  before(async () => {
    if (!skip) group = await startSentinelCluster();
  });
  after(async () => {
    await group?.stop();
  });
  storeContract('redis store behind Sentinel', {
    skip,
    open: (max) =>
      RedisTicketStore.connect({
        sentinels: (group as SentinelCluster).sentinelAddresses,
        name: (group as SentinelCluster).name,
        prefix: `tb-sentinel-contract-${process.pid}-${++prefixes}:`,
        maxDestinations: max,
        onStatus: () => undefined,
      }),
  });
});

interface Attempt {
  start: number;
  ms: number;
  /** The server's verdict, or the client's error. */
  verdict: 'New' | 'Reused' | 'failed';
  error?: string;
}

/**
 * One replica within 500 ms, the longest allowed: the default 50 ms is what production wants, but a
 * loaded test machine can hold a WAIT past it, and a take then goes unoffered for no failover at all.
 */
const ACK = { replicas: 1, timeoutMs: 500 };

test(
  'Sentinel failover under load: 0 failed client connections, resumption above 90% within 10 s of the promotion',
  { skip, timeout: 120_000 },
  (t) => failover(t, undefined),
);

test(
  'Sentinel failover under load with replicaAck: 0 failed client connections, no ticket offered twice to the destination',
  { skip, timeout: 120_000 },
  (t) => failover(t, ACK),
);

async function failover(t: TestContext, ack: typeof ACK | undefined): Promise<void> {
  {
    const began = Date.now();
    const dir = mkdtempSync(join(tmpdir(), 'tb-sentinel-test-'));
    const passwordFile = join(dir, 'redis-password');
    writeFileSync(passwordFile, `${DATA_PASSWORD}\n`, { mode: 0o600 });
    const sentinelVar = `TB_TEST_SENTINEL_PASSWORD_${process.pid}`;
    process.env[sentinelVar] = SENTINEL_PASSWORD;
    const prefix = `sentinel-${process.pid}:`;
    const stderr: { at: number; text: string }[] = [];
    const realWrite = process.stderr.write;
    let cluster: SentinelCluster | undefined;
    let server: SServer | undefined;
    let witness: PskWitness | undefined;
    let tb: TunnelHarness | undefined;
    try {
      cluster = await startSentinelCluster({ password: DATA_PASSWORD, sentinelPassword: SENTINEL_PASSWORD });
      await replicaAcknowledges(cluster.primaryPort);
      const cert = makeCert(['localhost']);
      server = await startSServer('tls13-anti-replay', cert);
      witness = await startPskWitness(server.port);
      process.stderr.write = (chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
        stderr.push({ at: Date.now(), text: String(chunk) });
        return (realWrite as (c: string | Uint8Array, ...r: unknown[]) => boolean).call(process.stderr, chunk, ...rest);
      };
      tb = await startTunnelService({
        upstream: { host: 'localhost', port: witness.port, ca: cert.certFile },
        cache: {
          reuse: 'never',
          store: {
            type: 'redis',
            sentinels: cluster.sentinelAddresses,
            name: cluster.name,
            prefix,
            auth: { passwordFile },
            sentinelAuth: { passwordEnv: sentinelVar },
            ...(ack ? { replicaAck: ack } : {}),
          },
        },
        admin: true,
      });
      t.diagnostic(`setup (3 sentinels, primary, replica, s_server, ticketbooth): ${Date.now() - began} ms`);

      const attempts: Attempt[] = [];
      let running = true;
      const port = tb.port;
      const attempt = async (): Promise<void> => {
        const start = Date.now();
        try {
          const { verdict } = await verdictPlain(port);
          attempts.push({ start, ms: Date.now() - start, verdict });
        } catch (err) {
          attempts.push({ start, ms: Date.now() - start, verdict: 'failed', error: (err as Error).message });
        }
      };
      const loop = async (): Promise<void> => {
        while (running) await attempt();
      };
      const loops = Array.from({ length: LOOPS }, () => loop());
      const until = async (done: () => boolean): Promise<void> => {
        while (!done()) await new Promise((r) => setTimeout(r, 20));
      };
      try {
        // Warm: the slot is stocked and connections resume before the primary goes.
        await until(() => attempts.length >= 200);
        // The replica loses its link just before the primary dies (a partition: a wrong masterauth
        // keeps it from coming back), and a burst of BURST connections takes more tickets than the
        // loops' renewals put back, so the slot's older tickets, which the replica holds, are taken
        // on the primary alone. Asynchronous replication loses those takes with the primary; WAIT
        // (replicaAck) sees no acknowledgement and offers none of those tickets.
        const replica = new Redis({ port: cluster.replicaPort, password: DATA_PASSWORD });
        await replica.config('SET', 'masterauth', 'not-the-password').finally(() => replica.disconnect());
        const primary = new Redis({ port: cluster.primaryPort, password: DATA_PASSWORD });
        const droppedAt = Date.now();
        const linkDropped = await primary.call('CLIENT', 'KILL', 'TYPE', 'replica').finally(() => primary.disconnect());
        await Promise.all(Array.from({ length: BURST }, () => attempt()));
        const switched = cluster.switchMaster(30_000);
        const killedAt = Date.now();
        const slotBefore = tb.handshakes().at(-1)?.ticketsLeft;
        cluster.primary.child.kill('SIGKILL');
        const promotion = await switched;
        // What the promoted replica holds of the slot (replication is asynchronous: the last writes may be missing).
        const raw = new Redis({ port: cluster.replicaPort, password: DATA_PASSWORD });
        const replicaHeld = await Promise.all((await raw.keys(`${prefix}d:*:t13`)).map((k) => raw.llen(k))).finally(() => raw.disconnect());
        t.diagnostic(
          `replica links dropped: ${String(linkDropped)}, then ${BURST} connections at once; primary killed (-9); ${promotion.line} after ${promotion.at - killedAt} ms`,
        );
        t.diagnostic(`the slot held ${slotBefore} tickets before the kill, ${replicaHeld.join(', ') || 'none'} on the promoted replica`);
        await until(() => Date.now() >= promotion.at + AFTER_MS);
        running = false;
        await Promise.all(loops);

        const f = figures(attempts, droppedAt, killedAt, promotion.at);
        const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
        const said = (re: RegExp, from = killedAt): number | undefined => stderr.find((l) => l.at >= from && re.test(l.text))?.at;
        const unavailable = said(/redis store unavailable, resuming nothing until it is back/);
        const reconnected = said(new RegExp(`redis store: reconnected to 127\\.0\\.0\\.1:${promotion.port}\\b`));
        const handshakes = tb.handshakes();
        // A ticket offered twice (a take lost with the old primary, not yet replicated) vs one the server no
        // longer knew: s_server's anti-replay cache keeps ~128 sessions, and the outage's full handshakes push old ones out.
        const offered = new Set<string>();
        let replayed = 0;
        for (const e of handshakes) {
          if (e.offeredHash === undefined) continue;
          if (offered.has(e.offeredHash)) replayed++;
          offered.add(e.offeredHash);
        }
        const refused = handshakes.filter((e) => e.fullCause === 'refused').length;
        const metrics = await (await fetch(`http://127.0.0.1:${tb.service.admin!.address().port}/metrics`)).text();
        const storeErrors = sample(metrics, 'ticketbooth_store_errors_total') ?? 0;

        t.diagnostic(`client connections: ${attempts.length} (${LOOPS} loops), failed: ${f.failed.length}; slowest ${f.slowestMs} ms`);
        t.diagnostic(`resumed before the replica was cut off: ${pct(f.before)}; between the kill and the promotion: ${pct(f.outage)}`);
        t.diagnostic(
          `stderr: unavailable ${unavailable === undefined ? '(not said)' : `${unavailable - killedAt} ms after the kill`}, ` +
            `reconnected to the promoted replica ${reconnected === undefined ? '(not said)' : `${reconnected - promotion.at} ms after the promotion`}`,
        );
        t.diagnostic(`first resumed connection ${f.firstResumedMs ?? '(none)'} ms after the promotion`);
        t.diagnostic(
          `resumption ≥ 90% in every ${BUCKET_MS} ms after ${f.recoveredMs} ms: ${f.buckets.map((b) => `${Math.round(100 * b.share)}%/${b.n}`).join(' ')}`,
        );
        t.diagnostic(`resumed in the 10 s after the promotion: ${pct(f.tenSeconds)}; from the recovery on: ${pct(f.afterRecovery)}`);
        const twice = witness.offeredTwice();
        const unacknowledged = said(/take\(s\) reached \d+ of 1 replica\(s\) within 500 ms: their tickets were not offered/, droppedAt);
        t.diagnostic(
          `${ack ? 'with' : 'without'} replicaAck: tickets offered twice, as the destination received them: ${twice} ` +
            `(of ${witness.offered.length} offers; ticketbooth's audit lines agree: ${replayed}); refused by the server: ${refused}; ` +
            `ticketbooth_store_errors_total ${storeErrors}`,
        );

        assert.deepEqual(
          f.failed.map((a) => a.error),
          [],
          'every client connection got its page through',
        );
        assert.ok(f.before >= 0.9, `resumption before the replica was cut off was ${pct(f.before)}`);
        assert.ok(witness.offered.length >= 150, `the relay saw ${witness.offered.length} offered tickets`);
        assert.equal(twice, replayed, 'the destination saw as many tickets twice as ticketbooth offered twice');
        if (ack) {
          assert.equal(twice, 0, 'a take acknowledged by the replica is never undone by its promotion');
          // The promoted replica has no replica of its own: its takes are not offered, and that is said.
          assert.ok(unacknowledged !== undefined, 'the unacknowledged takes are said on stderr');
        } else {
          // No assertion on `twice` here: whether the burst takes one of the tickets the replica kept
          // depends on how its takes and the loops' inserts interleave (1 in 2 of 7 runs).
          assert.ok(f.recoveredMs < 10_000, `resumption not back above 90% within 10 s: ${pct(f.tenSeconds)}`);
        }
        // Never silent: the outage and the move to the promoted replica on stderr, the failures in a metric.
        assert.ok(unavailable !== undefined && reconnected !== undefined, 'the outage and the reconnection are said on stderr');
        assert.equal(promotion.port, cluster.replicaPort);
        assert.ok(storeErrors > 0, 'the failed store operations are counted');
      } finally {
        running = false;
        await Promise.all(loops);
      }
    } finally {
      process.stderr.write = realWrite;
      delete process.env[sentinelVar];
      await tb?.stop();
      await witness?.stop();
      await server?.stop();
      await cluster?.stop();
      rmSync(dir, { recursive: true, force: true });
      t.diagnostic(`run time: ${Date.now() - began} ms`);
    }
  }
}

/**
 * Resumption shares (the server's verdicts) before the replica was cut off, during the outage and after the
 * promotion: in buckets from the promotion on, and the point from which every bucket is ≥ 90%.
 */
function figures(attempts: Attempt[], droppedAt: number, killedAt: number, promotedAt: number) {
  const share = (xs: Attempt[]): number => xs.filter((a) => a.verdict === 'Reused').length / Math.max(1, xs.length);
  const after = attempts.filter((a) => a.start >= promotedAt).sort((a, b) => a.start - b.start);
  const buckets = Array.from({ length: AFTER_MS / BUCKET_MS }, (_, i) => {
    const xs = after.filter((a) => Math.floor((a.start - promotedAt) / BUCKET_MS) === i);
    return { n: xs.length, share: share(xs) };
  });
  let recovered = buckets.length;
  while (recovered > 0 && buckets[recovered - 1].n > 0 && buckets[recovered - 1].share >= 0.9) recovered--;
  const recoveredMs = recovered * BUCKET_MS;
  const firstResumed = after.find((a) => a.verdict === 'Reused');
  return {
    failed: attempts.filter((a) => a.verdict === 'failed'),
    slowestMs: Math.max(...attempts.map((a) => a.ms)),
    before: share(attempts.filter((a) => a.start < droppedAt)),
    outage: share(attempts.filter((a) => a.start >= killedAt && a.start < promotedAt)),
    firstResumedMs: firstResumed && firstResumed.start - promotedAt,
    buckets,
    recoveredMs,
    tenSeconds: share(after.filter((a) => a.start < promotedAt + 10_000)),
    afterRecovery: share(after.filter((a) => a.start >= promotedAt + recoveredMs && a.start < promotedAt + 10_000)),
  };
}

/**
 * Just after its sync a replica the primary lists as online can still let a WAIT time out (seen:
 * offset 0 for 600 ms); the rig is ready once a write of its own is acknowledged, so that no take
 * goes unacknowledged for a reason of the rig's.
 */
async function replicaAcknowledges(port: number): Promise<void> {
  const raw = new Redis({ port, host: '127.0.0.1', password: DATA_PASSWORD });
  try {
    await raw.set('rig-ready', '1');
    assert.equal(await raw.wait(1, 15_000), 1, 'the replica acknowledges writes');
  } finally {
    raw.disconnect();
  }
}
