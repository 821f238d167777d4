import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { CASES, makeKeys, type DaneCase, type Keys } from '../support/dane-cases.js';
import { dnssecMissing, startDnssec, type DnssecDns } from '../support/dnssec.js';
import { freeLoopbackAddress } from '../support/ports.js';
import { fingerMissing, startFinger, type Finger, type SmtpVerdict } from '../support/posttls-finger.js';
import { startSmarthost, type Smarthost } from '../support/smarthost.js';
import { dial, message, sendMessage } from '../support/smtp-client.js';
import { startFaultServer, type FaultServer } from '../support/smtp-fault-server.js';

type Level = 'dane' | 'dane-only';
const LEVELS: Level[] = ['dane', 'dane-only'];

/** What ticketbooth did, read from both ends: the client's reply, what the MX host saw, the audit line. */
interface Seen {
  outcome: 'deliver' | 'defer' | 'inconsistent';
  auth?: string;
  why: string;
}

interface Row {
  c: DaneCase;
  level: Level;
  postfix: SmtpVerdict;
  ours: Seen;
  agree: boolean;
}

/**
 * Issue 22's conformance check: for each case of one table (DNS, TLSA records, the chain the MX
 * host sends, the next hop), Postfix's own verdict is asked live from posttls-finger on the same
 * DNSSEC world (nsd + validating unbound) and mapped to what smtp(8) would do; then one message
 * goes through ticketbooth at the same level to the same next hop. They must agree: delivered
 * (with the same authentication class) or deferred (a 4xx to the client, no RCPT at the host).
 * Cases run in table order against one ticketbooth per level (and per CA trusted or not), sessions
 * cached as in production: a row may depend on what an earlier row left behind (the shared DANE-TA host).
 */
describe(
  'DANE conformance: ticketbooth against Postfix (posttls-finger), case by case',
  { skip: dnssecMissing() ?? fingerMissing() },
  () => {
    let keys: Keys;
    let dns: DnssecDns;
    let finger: Finger;
    let port: number;
    const servers = new Map<string, FaultServer>();
    const smarthosts = new Map<string, Smarthost>(); // per level, and with the private CA trusted or not
    const rows: Row[] = [];

    before(async () => {
      keys = makeKeys();
      for (const c of CASES) {
        if (servers.has(c.server)) continue;
        const host = await freeLoopbackAddress(port ?? 25);
        const s = await startFaultServer({ host, port, cert: c.chain(keys), starttls: true, name: c.server });
        port ??= s.port; // every MX host on one port: MX records carry none
        servers.set(c.server, s);
      }
      const zones = { 'cf.test': new Set<string>(), 'pl.test': new Set<string>() };
      for (const c of CASES)
        for (const line of c.dns(keys, servers.get(c.server)!.host, port))
          zones[/\.pl\.test\.\s/.test(line) ? 'pl.test' : 'cf.test'].add(line);
      const bogus = CASES.filter((c) => c.bogusTlsa).map((c) => ({ name: `_${port}._tcp.${c.server}`, type: 'TLSA' }));
      dns = await startDnssec(
        [
          { origin: 'cf.test', security: 'anchored', records: [...zones['cf.test']], tamper: bogus },
          { origin: 'pl.test', security: 'unsigned', records: [...zones['pl.test']] },
        ],
        { port53: true },
      );
      finger = startFinger(dns.port53!);
    });

    after(async () => {
      for (const sh of smarthosts.values()) await sh.stop();
      for (const s of servers.values()) await s.stop();
      finger?.close();
      await dns?.stop();
      if (keys) rmSync(keys.dir, { recursive: true, force: true });
    });

    /** The ticketbooth for `level` (trusting the private CA when the case says so), started on first use and kept. */
    async function smarthost(level: Level, ca: boolean): Promise<Smarthost> {
      const id = `${level}${ca ? '+ca' : ''}`;
      let sh = smarthosts.get(id);
      if (!sh) {
        sh = await startSmarthost(
          {
            route: { mode: 'mx', port },
            tls: { level, ...(ca ? { ca: keys.ca.certFile } : {}) },
            // Generous: every host answers at once; a deferral here must come from DANE, never from a slow machine.
            timeouts: { idleSeconds: 30, dataSeconds: 30, connectSeconds: 15, replySeconds: 15, dataDoneSeconds: 15 },
            connectionCache: { enabled: false }, // each message its own connection: a later row may resume an earlier one's session
          },
          { dns: { servers: [dns.resolver], timeoutSeconds: 10 } },
        );
        smarthosts.set(id, sh);
      }
      return sh;
    }

    /** One message to `rcpt` through ticketbooth at `level`; delivered or deferred as both ends and the audit line tell. */
    async function throughTicketbooth(level: Level, c: DaneCase): Promise<Seen> {
      const sh = await smarthost(level, c.ca === true);
      const id = `${c.id}-${level}`;
      const rcpt = `${id}@${c.nextHop}`;
      const host = servers.get(c.server)!;
      const before = sh.transactions().length;
      const resumedBefore = host.resumed;
      const d = await dial(sh.port);
      let reply: { code: number; raw: string };
      try {
        await d.cmd('EHLO client.test');
        const sent = await sendMessage(d, 'a@client.test', [rcpt], message(id));
        reply = sent.replies[1].code !== 250 ? sent.replies[1] : sent.final;
      } finally {
        d.close();
      }
      // Messages go one at a time: the lines written since are this message's (a refused RCPT's line names no recipient).
      const dane = (await sh.waitForTransactions(before + 1, 60_000)).slice(before).at(-1)?.dane;
      const stored = host.stored.filter((m) => m.body.toString().includes(`Hello ${id}.`));
      const sawRcpt = host.commands.some((x) => /^RCPT/i.test(x.line) && x.line.includes(rcpt));
      const audit = dane
        ? `applied ${dane.applied}, tlsa ${dane.tlsa}${dane.reason ? `, ${dane.reason}` : ''}${dane.matched ? `, matched ${dane.matched}` : ''}`
        : 'no dane';
      const resumed = host.resumed > resumedBefore ? ', the host resumed a session' : '';
      if (reply.code === 250 && stored.length === 1 && stored[0].tls) return { outcome: 'deliver', auth: dane?.auth, why: audit + resumed };
      if (reply.code >= 400 && reply.code < 500 && stored.length === 0 && !sawRcpt)
        return { outcome: 'defer', why: `${reply.raw.trim()} (${audit})` };
      return { outcome: 'inconsistent', why: `reply ${reply.raw.trim()}, stored ${stored.length}, host saw RCPT: ${sawRcpt} (${audit})` };
    }

    const show = (v: { outcome: string; auth?: string }): string =>
      v.outcome === 'deliver' ? `deliver ${v.auth ?? '(no auth)'}` : v.outcome;

    for (const c of CASES)
      test(`${c.id}: ${c.what}`, async () => {
        const disagreements: string[] = [];
        for (const level of LEVELS) {
          const postfix = await finger.verdict(level, c.nextHop, port, c.ca ? keys.ca.certFile : undefined);
          const ours = await throughTicketbooth(level, c);
          const agree = postfix.outcome === ours.outcome && (postfix.outcome === 'defer' || postfix.auth === ours.auth);
          rows.push({ c, level, postfix, ours, agree });
          if (!agree)
            disagreements.push(
              `${c.id} at ${level}: smtp(8) would ${show(postfix)} (${postfix.why}); ticketbooth: ${show(ours)} (${ours.why})`,
            );
        }
        assert.deepEqual(disagreements, [], disagreements.join('\n'));
      });

    test('the table (case, level, Postfix, ticketbooth)', (t) => {
      const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
      t.diagnostic(line(['case', 'level', 'smtp(8) per posttls-finger', 'ticketbooth', '']));
      for (const r of rows) t.diagnostic(line([r.c.id, r.level, show(r.postfix), show(r.ours), r.agree ? 'agree' : 'DISAGREE']));
      assert.equal(rows.length, CASES.length * LEVELS.length, 'every case ran at both levels');
    });
  },
);
