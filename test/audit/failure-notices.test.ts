import assert from 'node:assert/strict';
import { test } from 'node:test';
import { noticeFailures } from '../../src/audit/failure-notices.js';
import { makeCert } from '../support/certs.js';
import { freeTcpPort } from '../support/ports.js';
import { dial, message, sendMessage } from '../support/smtp-client.js';
import { startFaultServer, type FaultServer } from '../support/smtp-fault-server.js';
import { startSmarthost } from '../support/smarthost.js';

/**
 * Each kind of upstream failure gives a person one stderr line naming the listener, the
 * destination and the cause (the same words as the metrics and the report), whatever the audit
 * log is set to; the transaction's own line says the same. Real next hops: a closed port, a server that never greets, one without STARTTLS,
 * one whose certificate does not verify.
 */
test('every upstream failure kind: one stderr line with destination and cause; repeats are summed up', async () => {
  const cert = makeCert(['next.hop.test']);
  const hops: FaultServer[] = [];
  const hop = async (opts: Parameters<typeof startFaultServer>[0]): Promise<number> => {
    const h = await startFaultServer(opts);
    hops.push(h);
    return h.port;
  };
  const closed = await freeTcpPort();
  const cases = [
    { port: closed, level: 'encrypt', expect: /failed at connect \(connect\)/ },
    { port: await hop({ fault: 'stall-greeting' }), level: 'encrypt', expect: /failed at greeting \(timeout\)/ },
    { port: await hop({}), level: 'encrypt', expect: /failed at starttls \(protocol\): .*does not offer STARTTLS/ },
    { port: await hop({ cert, starttls: true }), level: 'verify', expect: /TLS with 127\.0\.0\.1:\d+ failed \(certificate\)/ },
  ];
  try {
    for (const c of cases) {
      const sh = await startSmarthost({
        route: { mode: 'relay', host: '127.0.0.1', port: c.port },
        tls: { level: c.level },
        timeouts: { connectSeconds: 1, replySeconds: 1, setupSeconds: 2, rcptBudgetSeconds: 3 },
      });
      const lines: string[] = [];
      const stop = noticeFailures(sh.service.audit, (l) => lines.push(l));
      try {
        for (let i = 0; i < 2; i++) {
          const d = await dial(sh.port);
          await d.cmd('EHLO client.test');
          const r = await sendMessage(d, 'a@client.test', ['b@dest.test'], message(`n${i}`));
          assert.ok(r.replies.some((x) => x.code === 451) && r.final.code !== 250, r.final.raw);
          d.close();
        }
        assert.equal(lines.length, 1, `one line for two failures of one kind: ${lines.join('')}`);
        assert.match(lines[0], new RegExp(`^sh: .*127\\.0\\.0\\.1:${c.port}`));
        assert.match(lines[0], c.expect);
        // The transaction's audit line names the hop as a connected one would, and why it failed.
        for (const t of await sh.waitForTransactions(2)) {
          assert.equal(t.nextHop, `127.0.0.1:${c.port}`);
          assert.ok(t.error && !t.error.includes('client went away'), t.error);
        }
      } finally {
        stop();
        await sh.stop();
      }
    }
  } finally {
    for (const h of hops) await h.stop();
  }
});
