import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { HandshakeEvent } from '../../src/audit/events.js';
import { makeIssuedCert, type IssuedPair } from '../support/certs.js';
import { dnssecMissing, startDnssec, type DnssecDns } from '../support/dnssec.js';
import { freeLoopbackAddress } from '../support/ports.js';
import { sendOne } from '../support/smtp-client.js';
import type { SmtpReply } from '../../src/upstream/smtp-client/reply-reader.js';
import { startFaultServer, type FaultServer } from '../support/smtp-fault-server.js';
import { startSmarthost, type Smarthost } from '../support/smarthost.js';
import { tlsaOf } from '../support/tlsa.js';

/**
 * Two next-hop domains share one MX host whose certificate passes the name check for one of them
 * only. Whatever was resumed or pooled for the first, the second never rides it: a resumed session
 * and a cached connection skip the certificate check, so the names it checked are in their keys.
 * The verdict is the host's: it never sees a RCPT for the second domain, and stores only the first's mail.
 */
const LEVELS = {
  // DANE-TA (`2 1 1`, the CA): the leaf must name the MX host or the next-hop domain; it names `a` only.
  dane: { a: 'a.names.test', b: 'b.names.test', host: 'ta' },
  // The next-hop domain (or a name under it) against the CA of the route: again `a` only.
  secure: { a: 'a.names.test', b: 'b.names.test', host: 'ta' },
  // The MX host name: `va` and `vb` have MX hosts of their own names on one address; the certificate names `va`'s.
  verify: { a: 'va.names.test', b: 'vb.names.test', host: 'v' },
} as const;
type Level = keyof typeof LEVELS;

describe('reference names: no resumption or cached connection across next hops that check differently', { skip: dnssecMissing() }, () => {
  let dns: DnssecDns;
  let port: number;
  let certs: Record<'ta' | 'v', IssuedPair>;
  /** Each host's CA in a file, as a route's `tls.ca` names it. */
  const caFiles: Partial<Record<'ta' | 'v', string>> = {};
  const hosts: Partial<Record<'ta' | 'v', FaultServer>> = {};
  const smarthosts: Smarthost[] = [];

  before(async () => {
    certs = { ta: makeIssuedCert(['a.names.test']), v: makeIssuedCert(['mx-va.names.test']) };
    const dir = mkdtempSync(join(tmpdir(), 'tb-names-'));
    for (const which of ['ta', 'v'] as const) {
      caFiles[which] = join(dir, `${which}-ca.pem`);
      writeFileSync(caFiles[which], certs[which].ca);
    }
    const first = await startFaultServer({ host: '127.0.0.1', cert: certs.ta, starttls: true, name: 'mx.names.test' });
    port = first.port;
    hosts.ta = first;
    hosts.v = await startFaultServer({
      host: await freeLoopbackAddress(port),
      port,
      cert: certs.v,
      starttls: true,
      name: 'mx-v.names.test',
    });
    dns = await startDnssec([
      {
        origin: 'names.test',
        security: 'anchored',
        records: [
          'a 60 IN MX 10 mx',
          'b 60 IN MX 10 mx',
          `mx 60 IN A ${hosts.ta.host}`,
          `_${port}._tcp.mx 60 IN TLSA ${tlsaOf(certs.ta.ca, 2, 1, 1)}`,
          'va 60 IN MX 10 mx-va',
          'vb 60 IN MX 10 mx-vb',
          `mx-va 60 IN A ${hosts.v.host}`,
          `mx-vb 60 IN A ${hosts.v.host}`,
        ],
      },
    ]);
  });
  after(async () => {
    for (const sh of smarthosts) await sh.stop();
    for (const h of Object.values(hosts)) await h.stop();
    await dns?.stop();
  });

  async function smarthost(level: Level, pooled: boolean): Promise<Smarthost> {
    const sh = await startSmarthost(
      {
        route: { mode: 'mx', port },
        tls: { level, ...(level === 'dane' ? {} : { ca: caFiles[LEVELS[level].host] }) },
        timeouts: { idleSeconds: 5, dataSeconds: 5, connectSeconds: 2, replySeconds: 3, dataDoneSeconds: 3 },
        connectionCache: { enabled: pooled },
      },
      { dns: { servers: [dns.resolver], timeoutSeconds: 2 } },
    );
    smarthosts.push(sh);
    return sh;
  }

  const send = (sh: Smarthost, rcpt: string, id: string): Promise<SmtpReply> => sendOne(sh.port, rcpt, id);

  for (const level of Object.keys(LEVELS) as Level[]) {
    for (const pooled of [false, true]) {
      test(`${level}, ${pooled ? 'connection cache on' : 'each message its own connection'}: the second domain never rides the first's session or connection`, async () => {
        const { a, b, host: which } = LEVELS[level];
        const host = hosts[which]!;
        const sh = await smarthost(level, pooled);
        const tag = `${level}-${pooled ? 'pool' : 'resume'}`;
        const rcptsFor = (domain: string): number => host.commands.filter((c) => c.line.toLowerCase().endsWith(`@${domain}>`)).length;
        const stored = (): string[] => host.stored.map((m) => /^Subject: test (\S+)/m.exec(m.body.toString())?.[1] ?? '?');

        const rcptsBefore = rcptsFor(b);
        assert.equal((await send(sh, `u@${b}`, `${tag}-b1`)).code, 451, 'the certificate does not pass for the second domain');
        const [connections, resumed] = [host.connections, host.resumed];
        assert.equal((await send(sh, `u@${a}`, `${tag}-a1`)).code, 250);
        assert.equal((await send(sh, `u@${a}`, `${tag}-a2`)).code, 250);
        // The first domain's second message rode what the first left: the cache is there to be misused.
        if (pooled) assert.equal(host.connections, connections + 1, 'the second message to the first domain took the cached connection');
        else assert.equal(host.resumed, resumed + 1, 'the second message to the first domain resumed');

        const r = await send(sh, `u@${b}`, `${tag}-b2`);
        assert.equal(r.code, 451, `the second domain after the first: ${r.raw}`);
        assert.equal(rcptsFor(b), rcptsBefore, 'the host never saw a RCPT for the second domain');
        assert.deepEqual(
          stored().filter((s) => s.startsWith(tag)),
          [`${tag}-a1`, `${tag}-a2`],
        );
        if (!pooled) {
          assert.equal(host.resumed, resumed + 1, 'nothing resumed for the second domain');
          // The resumed handshake says what its session was checked against when it was made.
          const handshakes = await sh.waitForEvents('tls.handshake', 4);
          const again = handshakes.find((e: HandshakeEvent) => e.resumed);
          assert.deepEqual(again?.trust, level === 'dane' ? { check: 'tlsa', names: ['mx.names.test', a] } : wantedTrust(level, a));
        }
      });
    }
  }
});

function wantedTrust(level: 'secure' | 'verify', domain: string): HandshakeEvent['trust'] {
  return level === 'secure' ? { check: 'name', names: [domain, `.${domain}`] } : { check: 'name', names: [`mx-${domain}`] };
}
