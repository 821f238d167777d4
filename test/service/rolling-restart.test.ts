import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startHaproxy, type Haproxy } from '../support/haproxy.js';
import { missing } from '../support/interop.js';
import { sample } from '../support/metrics.js';
import { freeTcpPort } from '../support/ports.js';
import { startProcess, type RunningProcess } from '../support/process.js';
import { dial, message, sendMessage } from '../support/smtp-client.js';
import { startFaultServer, type FaultServer } from '../support/smtp-fault-server.js';
import { until } from '../support/until.js';

const CLIENTS = 8;

/**
 * Two ticketbooth processes (the CLI, as deployed) behind haproxy, restarted one after the other
 * (SIGTERM: stop accepting, let sessions finish; then start again) while clients keep sending,
 * one connection per message. haproxy's health checks and `option redispatch` send a connection
 * refused by the stopping replica to the other one. Judged on both ends: every client gets a
 * final reply (2xx or 4xx), and the destination holds each 2xx message exactly once.
 */
describe('rolling restart of two replicas behind haproxy', { skip: missing('haproxy') }, () => {
  let dest: FaultServer;
  let lb: Haproxy;
  const replicas: Array<{ file: string; port: number; admin: number; proc?: RunningProcess }> = [];

  const start = async (r: (typeof replicas)[number]): Promise<void> => {
    r.proc = await startProcess(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve', '--config', r.file], {
      ready: /relay listening on/,
    });
  };

  before(async () => {
    dest = await startFaultServer({ name: 'dest.test' });
    const dir = mkdtempSync(join(tmpdir(), 'tb-rolling-'));
    for (let i = 0; i < 2; i++) {
      const port = await freeTcpPort();
      const admin = await freeTcpPort();
      const file = join(dir, `replica-${i}.yaml`);
      writeFileSync(
        file,
        `listeners:
  - name: relay
    type: smtp
    listen: 127.0.0.1:${port}
    hostname: replica-${i}.test
    route: { mode: relay, host: 127.0.0.1, port: ${dest.port}, tls: { level: none } }
admin: { listen: "127.0.0.1:${admin}" }
shutdownTimeoutSeconds: 10
# /readyz says 503 at once; haproxy (two failed checks 100 ms apart) stops sending before the listener closes.
drainDelaySeconds: 1
`,
      );
      replicas.push({ file, port, admin });
    }
    for (const r of replicas) await start(r);
    // Health from /readyz on each replica's admin port, as a Kubernetes readiness probe would.
    lb = await startHaproxy(
      replicas.map((r) => ({ host: '127.0.0.1', port: r.port, server: `check port ${r.admin} inter 100 fall 2 rise 2` })),
      { backend: ['option httpchk GET /readyz', 'option redispatch', 'retries 3'] },
    );
  });
  after(async () => {
    await lb?.stop();
    for (const r of replicas) await r.proc?.stop();
    await dest?.stop();
  });

  test('no transaction lost: each client gets 2xx or 4xx, each 2xx message is at the destination once', async (t) => {
    const outcomes: Array<{ id: string; code: number | 'no reply' }> = [];
    let stop = false;
    const client = async (n: number): Promise<void> => {
      for (let round = 0; !stop; round++) {
        const id = `roll-${n}-${round}`;
        try {
          const d = await dial(lb.port);
          const ehlo = await d.cmd('EHLO client.test');
          const final = ehlo.code === 250 ? (await sendMessage(d, 'a@client.test', ['u@dest.test'], message(id))).final : ehlo;
          d.close();
          outcomes.push({ id, code: final.code });
        } catch {
          outcomes.push({ id, code: 'no reply' });
        }
      }
    };
    const delivered = (): number => outcomes.filter((o) => o.code === 250).length;
    const moreDelivered = async (n: number): Promise<void> => {
      const target = delivered() + n;
      while (delivered() < target) await new Promise((r) => setImmediate(r));
    };
    const load = Array.from({ length: CLIENTS }, (_, n) => client(n));
    await moreDelivered(40);
    for (const r of replicas) {
      const exited = once(r.proc!.child, 'exit');
      r.proc!.child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      assert.equal(code, 0, `replica on ${r.port} drained and exited cleanly`);
      await moreDelivered(40); // the other replica carries the load alone
      await start(r);
      // Back in haproxy's rotation (two good checks), not only started: stopping the other replica
      // before that would leave haproxy no server at all, which is not what a rolling restart does.
      await until(async () => (await transactionsServed(r.admin)) > 0, 30_000, `haproxy to send to the replica on ${r.port} again`);
      await moreDelivered(40);
    }
    stop = true;
    await Promise.all(load);

    const byCode = new Map<string, number>();
    for (const o of outcomes) byCode.set(String(o.code), (byCode.get(String(o.code)) ?? 0) + 1);
    t.diagnostic(
      `${outcomes.length} transactions: ${[...byCode].map(([c, n]) => `${c}: ${n}`).join(', ')}; destination stored ${dest.stored.length}`,
    );
    assert.ok(
      outcomes.every((o) => typeof o.code === 'number' && o.code >= 200 && o.code < 500),
      JSON.stringify(outcomes.filter((o) => typeof o.code !== 'number' || o.code >= 500)),
    );
    const stored = dest.stored.map((m) => /<([^>]+)@client\.test>/.exec(m.body.toString())![1]);
    const accepted = outcomes.filter((o) => o.code === 250).map((o) => o.id);
    assert.deepEqual([...stored].sort(), [...accepted].sort(), 'exactly the accepted messages, each once');
  });
});

/** SMTP transactions a replica (this run of its process) has answered, from its own /metrics. */
async function transactionsServed(adminPort: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
  return sample(await res.text(), 'ticketbooth_smtp_transactions_total') ?? 0;
}
