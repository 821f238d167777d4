import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { Ajv } from 'ajv';
import type { PolicyResult, TlsrptReport } from '../../src/tlsrpt/report.js';
import { makeCert, makeIssuedCert, type CertPair } from '../support/certs.js';
import { dnssecMissing, startDnssec, type DnssecDns } from '../support/dnssec.js';
import { startPolicyServer, type PolicyServer } from '../support/policy-server.js';
import { freeLoopbackAddress } from '../support/ports.js';
import { dial, message, sendMessage } from '../support/smtp-client.js';
import { startFaultServer, type FaultServer, type StoredMessage } from '../support/smtp-fault-server.js';
import { startSmarthost, type Smarthost } from '../support/smarthost.js';
import { tlsaOf } from '../support/tlsa.js';
import { until } from '../support/until.js';
import { sample } from '../support/metrics.js';

const exec = promisify(execFile);
const schema = JSON.parse(readFileSync(new URL('../fixtures/tlsrpt-schema.json', import.meta.url), 'utf8')) as object;
const validate = new Ajv({ allErrors: true, strict: true, strictRequired: false }).compile<TlsrptReport>(schema);

const POLICY = (mx: string, mode: string): string => `version: STSv1\r\nmode: ${mode}\r\nmx: ${mx}\r\nmax_age: 86400\r\n`;

/** An `https:` rua endpoint (RFC 8460 5.2): keeps every POST it is sent. */
interface Collector {
  server: Server;
  address: string;
  port: number;
  posts: Array<{ path: string; type: string; body: Buffer }>;
}

/**
 * TLS-RPT end to end: a ticketbooth smarthost (level dane, so MTA-STS too) delivers to real MX
 * servers whose domains publish MTA-STS policies (nsd through unbound, a real HTTPS policy host),
 * TLSA records (a signed zone) or nothing, and `_smtp._tls` records naming an HTTPS endpoint or a
 * mailbox. Its audit lines go to a file; `ticketbooth tlsrpt --send` (the CLI, as cron runs it)
 * builds the day's reports and delivers them: by POST to the endpoint, by mail through the same
 * smarthost to the mailbox's MX. Every count in the reports is checked against what the MX servers
 * saw: STARTTLS commands (TLS sessions attempted), completed handshakes, cleartext connections.
 * The mailboxes' own domains have policies their MX hosts fail (MTA-STS enforce with an untrusted
 * certificate; a TLSA record that does not match): the reports arrive all the same, TLS-Required:
 * No (RFC 8460 3, RFC 8689 4.3), while ordinary mail to them is refused.
 */
describe('ticketbooth tlsrpt: reports from a real smarthost, delivered by HTTPS and by mail', { skip: dnssecMissing() }, () => {
  let dns: DnssecDns;
  let web: PolicyServer;
  let sh: Smarthost;
  let collector: Collector;
  const mx: Record<string, FaultServer> = {};
  const dir = mkdtempSync(join(tmpdir(), 'tb-tlsrpt-e2e-'));
  const out = join(dir, 'reports');
  const auditFile = join(dir, 'audit.log');
  const configFile = join(dir, 'tlsrpt.json');
  const caFile = join(dir, 'ca.pem');
  const today = new Date().toISOString().slice(0, 10);
  let port: number;

  before(async () => {
    const good = makeIssuedCert([
      'mx.enf.rpt.test',
      'mx.plain.rpt.test',
      'collector.rpt.test',
      ...['enf', 'tst', 'clear', 'bad', 'reports'].map((d) => `mta-sts.${d}.rpt.test`),
    ]);
    writeFileSync(caFile, good.ca);
    const daneCert = makeCert(['mx.dane-rpt.test']);
    mx.enf = await startFaultServer({ host: '127.0.0.1', cert: good, starttls: true, name: 'mx.enf.rpt.test' });
    port = mx.enf.port;
    const at = async (name: string, cert: CertPair = good, starttls = true): Promise<FaultServer> =>
      startFaultServer({ host: await freeLoopbackAddress(port), port, cert, starttls, name });
    mx.tst = await at('mx.tst.rpt.test', makeCert(['mx.tst.rpt.test'])); // self-signed: testing reports it
    mx.clear = await at('mx.clear.rpt.test', good, false); // no STARTTLS
    mx.bad = await at('mx.bad.rpt.test', makeCert(['mx.bad.rpt.test'])); // enforce refuses it
    mx.plain = await at('mx.plain.rpt.test');
    mx.dane = await at('mx.dane-rpt.test', daneCert);
    // The mailboxes of the mailto: ruas, each failing its own domain's policy: MTA-STS enforce (self-signed), DANE (TLSA of another key).
    mx.reports = await at('mx.reports.rpt.test', makeCert(['mx.reports.rpt.test']));
    mx.box = await at('mx-box.dane-rpt.test', makeCert(['mx-box.dane-rpt.test']));
    web = await startPolicyServer(await freeLoopbackAddress(443), good);
    web.policies.set('enf.rpt.test', POLICY('mx.enf.rpt.test', 'enforce'));
    web.policies.set('tst.rpt.test', POLICY('mx.tst.rpt.test', 'testing'));
    web.policies.set('clear.rpt.test', POLICY('mx.clear.rpt.test', 'testing'));
    web.policies.set('bad.rpt.test', POLICY('mx.bad.rpt.test', 'enforce'));
    web.policies.set('reports.rpt.test', POLICY('mx.reports.rpt.test', 'enforce'));
    collector = await startCollector(await freeLoopbackAddress(port), good);
    const https = `https://collector.rpt.test:${collector.port}/v1/tlsrpt`;
    const mailto = 'mailto:tls-reports@reports.rpt.test';
    const daneMailto = 'mailto:tls-reports@box.dane-rpt.test';
    const rua = (d: string, uri: string): string => `_smtp._tls.${d} 60 IN TXT "v=TLSRPTv1; rua=${uri}"`;
    dns = await startDnssec([
      {
        origin: 'rpt.test',
        security: 'unsigned',
        records: [
          ...['enf', 'tst', 'clear', 'bad', 'plain', 'reports'].flatMap((d) => [
            `${d} 60 IN MX 10 mx.${d}`,
            `mx.${d} 60 IN A ${mx[d].host}`,
          ]),
          ...['enf', 'tst', 'clear', 'bad', 'reports'].flatMap((d) => [
            `_mta-sts.${d} 60 IN TXT "v=STSv1; id=1"`,
            `mta-sts.${d} 60 IN A ${web.address}`,
          ]),
          `collector 60 IN A ${collector.address}`,
          rua('enf', https),
          rua('bad', https),
          rua('plain', https),
          rua('tst', mailto),
          rua('clear', mailto),
        ],
      },
      {
        origin: 'dane-rpt.test',
        security: 'anchored',
        records: [
          '@ 60 IN MX 10 mx',
          `mx 60 IN A ${mx.dane.host}`,
          `_${port}._tcp.mx 60 IN TLSA ${tlsaOf(daneCert.cert)}`,
          `_smtp._tls 60 IN TXT "v=TLSRPTv1; rua=${daneMailto}"`,
          'box 60 IN MX 10 mx-box',
          `mx-box 60 IN A ${mx.box.host}`,
          `_${port}._tcp.mx-box 60 IN TLSA ${tlsaOf(daneCert.cert)}`,
        ],
      },
    ]);
    sh = await startSmarthost(
      {
        route: { mode: 'mx', port },
        tls: { level: 'dane', ca: caFile },
        timeouts: { idleSeconds: 5, dataSeconds: 5, connectSeconds: 2, replySeconds: 3, dataDoneSeconds: 3 },
      },
      {
        dns: { servers: [dns.resolver], timeoutSeconds: 2 },
        mtaSts: { ca: caFile, timeoutSeconds: 3 },
        admin: { listen: '127.0.0.1:0' },
      },
    );
    // What `ticketbooth tlsrpt` is given: the smarthost's listener (mailto: reports go through it), DNS and the CA.
    const listener = { name: 'sh', type: 'smtp', listen: `127.0.0.1:${sh.port}`, hostname: 'tb.test', route: { mode: 'mx', port } };
    writeFileSync(
      configFile,
      JSON.stringify({ listeners: [listener], dns: { servers: [dns.resolver], timeoutSeconds: 2 }, mtaSts: { ca: caFile } }),
    );
  });
  after(async () => {
    await sh?.stop();
    for (const s of Object.values(mx)) await s.stop();
    await web?.stop();
    await new Promise<void>((resolve) => (collector ? collector.server.close(() => resolve()) : resolve()));
    collector?.server.closeAllConnections();
    await dns?.stop();
  });

  async function send(rcpt: string, id: string): Promise<number> {
    const d = await dial(sh.port);
    try {
      await d.cmd('EHLO client.test');
      const sent = await sendMessage(d, 'a@client.test', [rcpt], message(id));
      return sent.replies[1].code !== 250 ? sent.replies[1].code : sent.final.code;
    } finally {
      d.close();
    }
  }

  const starttls = (s: FaultServer): number => s.commands.filter((c) => /^STARTTLS$/i.test(c.line)).length;
  const run = (): Promise<{ stdout: string; stderr: string }> =>
    exec(process.execPath, [
      '--import',
      'tsx',
      'src/cli.ts',
      'tlsrpt',
      '--date',
      today,
      '--org',
      'Ticketbooth Test',
      '--contact',
      'postmaster@sender.test',
      '--out',
      out,
      '--send',
      '--config',
      configFile,
      auditFile,
    ]);
  /** The report a mail holds: its attachment, base64, gunzipped. */
  const reportOf = (m: StoredMessage): TlsrptReport => {
    const b64 = /Content-Type: application\/tlsrpt\+gzip\r\n(?:.+\r\n|\s.+\r\n)*\r\n([A-Za-z0-9+/=\r\n]+?)\r\n--/.exec(
      m.body.toString('latin1'),
    );
    assert.ok(b64, m.body.toString('latin1'));
    return JSON.parse(gunzipSync(Buffer.from(b64[1].replace(/\r\n/g, ''), 'base64')).toString('utf8')) as TlsrptReport;
  };
  const only = (r: TlsrptReport): PolicyResult => {
    assert.ok(validate(r), JSON.stringify(validate.errors, null, 1));
    assert.equal(r.policies.length, 1, JSON.stringify(r.policies));
    return r.policies[0];
  };
  const counts = (p: PolicyResult): [number, number] => [
    p.summary['total-successful-session-count'],
    p.summary['total-failure-session-count'],
  ];
  const failureTypes = (p: PolicyResult): Record<string, number> =>
    Object.fromEntries((p['failure-details'] ?? []).map((d) => [d['result-type'], d['failed-session-count']]));

  test('a day of deliveries: enforce, testing, no STARTTLS, a refused certificate, no policy, DANE', async () => {
    // Rounds of two messages; between rounds the MX servers drop their connections, so the
    // connection cache carries some messages on a session it has and others on a new one:
    // sessions and transactions differ, and the reports must count sessions.
    for (let round = 0; round < 3; round++) {
      for (const d of ['enf', 'tst', 'clear', 'plain', 'dane-rpt'])
        for (let i = 0; i < 2; i++) assert.equal(await send(`u@${d.includes('-') ? d : `${d}.rpt`}.test`, `${d}-${round}-${i}`), 250);
      for (const s of Object.values(mx)) s.dropConnections();
    }
    assert.equal(await send('u@bad.rpt.test', 'bad-0'), 451);
    assert.ok(mx.clear.stored.every((m) => !m.tls) && mx.enf.stored.every((m) => m.tls));
    assert.ok(
      mx.enf.tlsSessions >= 3 && mx.enf.tlsSessions < mx.enf.stored.length,
      `${mx.enf.tlsSessions} sessions for ${mx.enf.stored.length} messages`,
    );
    // Every TLS session attempted has its line (written when its connection closes, or a second after the handshake).
    const attempted = ['enf', 'tst', 'bad', 'plain', 'dane'].reduce((n, d) => n + starttls(mx[d]), 0);
    await sh.waitForEvents('tls.handshake', attempted);
    writeFileSync(auditFile, sh.events.map((e) => JSON.stringify(e)).join('\n') + '\n');
  });

  test('ticketbooth tlsrpt --send: one gzip report per https: rua, counts equal to what the MX servers saw', async () => {
    const { stdout } = await run();
    assert.match(stdout, /enf\.rpt\.test: sent to https:/);
    const posts = new Map(collector.posts.map((p) => [JSON.parse(gunzipSync(p.body).toString('utf8')) as TlsrptReport, p]));
    assert.equal(collector.posts.length, 3, stdout);
    for (const p of collector.posts) assert.deepEqual([p.path, p.type], ['/v1/tlsrpt', 'application/tlsrpt+gzip']);
    const byDomain = new Map([...posts.keys()].map((r) => [only(r).policy['policy-domain'], r]));
    assert.deepEqual([...byDomain.keys()].sort(), ['bad.rpt.test', 'enf.rpt.test', 'plain.rpt.test']);

    const enf = only(byDomain.get('enf.rpt.test')!);
    assert.deepEqual(enf.policy, {
      'policy-type': 'sts',
      'policy-string': POLICY('mx.enf.rpt.test', 'enforce').trim().split('\r\n'),
      'policy-domain': 'enf.rpt.test',
      'mx-host': ['mx.enf.rpt.test'],
    });
    assert.ok(mx.enf.tlsSessions > 0);
    assert.deepEqual(counts(enf), [mx.enf.tlsSessions, 0], 'one session per TLS session the MX saw (4 messages, cached connections)');
    assert.equal(starttls(mx.enf), mx.enf.tlsSessions);

    const bad = only(byDomain.get('bad.rpt.test')!);
    assert.deepEqual(counts(bad), [mx.bad.tlsSessions, starttls(mx.bad)]);
    assert.deepEqual([mx.bad.tlsSessions, starttls(mx.bad)], [0, 1]);
    assert.deepEqual(failureTypes(bad), { 'certificate-not-trusted': 1 });
    const detail = bad['failure-details']![0];
    assert.deepEqual(
      [detail['receiving-mx-hostname'], detail['receiving-ip'], detail['receiving-mx-helo'], detail['sending-mta-ip']],
      ['mx.bad.rpt.test', mx.bad.host, 'mx.bad.rpt.test', '127.0.0.1'],
    );

    const plain = only(byDomain.get('plain.rpt.test')!);
    assert.deepEqual(plain.policy, { 'policy-type': 'no-policy-found', 'policy-domain': 'plain.rpt.test' });
    assert.deepEqual(counts(plain), [mx.plain.tlsSessions, 0]);
  });

  test('mailto: rua: the RFC 8460 mail through the smarthost into the mailbox, its reports equal to the MX counts', async () => {
    const mails = [...mx.reports.stored, ...mx.box.stored];
    assert.deepEqual([mx.reports.stored.length, mx.box.stored.length], [2, 1]);
    for (const m of mails) {
      const text = m.body.toString('latin1').replace(/\r\n[ \t]/g, ' ');
      assert.equal(m.from, '<postmaster@sender.test>');
      assert.match(m.to.join(), /^<tls-reports@(reports\.rpt|box\.dane-rpt)\.test>$/);
      assert.match(
        text,
        /^Subject: Report Domain: [a-z.-]+ Submitter: sender\.test Report-ID: <\d{8}\.[a-z.-]+\.[0-9a-f]{10}@sender\.test>\r$/m,
      );
      assert.match(text, /^TLS-Required: No\r$/m);
      assert.match(text, /^TLS-Report-Submitter: sender\.test\r$/m);
      assert.match(text, /^Content-Type: multipart\/report; report-type="tlsrpt"; boundary=/m);
    }
    const byDomain = new Map(mails.map((m) => [/^TLS-Report-Domain: (\S+)\r$/m.exec(m.body.toString('latin1'))![1], reportOf(m)]));
    assert.deepEqual([...byDomain.keys()].sort(), ['clear.rpt.test', 'dane-rpt.test', 'tst.rpt.test']);

    const tst = only(byDomain.get('tst.rpt.test')!);
    assert.equal(tst.policy['policy-type'], 'sts');
    assert.ok(mx.tst.tlsSessions > 0);
    assert.deepEqual(counts(tst), [0, mx.tst.tlsSessions], 'testing: every session would have failed verify');
    assert.deepEqual(failureTypes(tst), { 'certificate-not-trusted': mx.tst.tlsSessions });

    const clear = only(byDomain.get('clear.rpt.test')!);
    assert.ok(mx.clear.connections > 0);
    assert.deepEqual(counts(clear), [0, mx.clear.connections], 'one failed session per cleartext connection');
    assert.deepEqual(failureTypes(clear), { 'starttls-not-supported': mx.clear.connections });

    const dane = only(byDomain.get('dane-rpt.test')!);
    assert.equal(dane.policy['policy-type'], 'tlsa');
    assert.deepEqual(dane.policy['mx-host'], ['mx.dane-rpt.test']);
    assert.match(dane.policy['policy-string']![0], /^3 1 1 [0-9A-F]{64}$/);
    assert.ok(mx.dane.tlsSessions > 0);
    assert.deepEqual(counts(dane), [mx.dane.tlsSessions, 0]);
  });

  test('--out: each report as RFC 8460 5.3 names it, the same report that was delivered', () => {
    const files = readdirSync(out)
      .filter((f) => !f.startsWith('.'))
      .sort();
    const start = Date.parse(`${today}T00:00:00Z`) / 1000;
    assert.deepEqual(
      files,
      ['bad.rpt.test', 'clear.rpt.test', 'dane-rpt.test', 'enf.rpt.test', 'plain.rpt.test', 'tst.rpt.test'].map(
        (d) => `sender.test!${d}!${start}!${start + 86_399}.json.gz`,
      ),
    );
    const posted = collector.posts.map((p) => gunzipSync(p.body).toString('utf8'));
    const written = gunzipSync(readFileSync(join(out, files[3]))).toString('utf8');
    assert.ok(posted.includes(written), 'the file holds the bytes the endpoint got');
  });

  test('running it again for the same day sends nothing twice', async () => {
    const { stdout } = await run();
    assert.equal((stdout.match(/already sent to /g) ?? []).length, 6, stdout);
    assert.doesNotMatch(stdout, /: sent to /);
    assert.equal(collector.posts.length, 3);
    assert.equal(mx.reports.stored.length + mx.box.stored.length, 3);
  });

  test('the reports went past the mailboxes’ failing MTA-STS and DANE on MAIL … X-TLS-REQUIRED=NO, audited; other mail is refused', async () => {
    const reports = sh.transactions().filter((t) => t.policyBypass);
    assert.deepEqual(
      reports.map((t) => [t.code, t.policyBypass, t.sts, t.dane]),
      [0, 1, 2].map(() => [250, { why: 'tls-required-no', ignored: ['mta-sts', 'dane'] }, undefined, undefined]),
    );
    const metrics = await (await fetch(`http://127.0.0.1:${sh.service.admin!.address().port}/metrics`)).text();
    assert.equal(sample(metrics, 'ticketbooth_smtp_policy_bypass_total', { listener: 'sh', ignored: 'mta-sts+dane' }), 3);
    // The request is ticketbooth's: the hops got a plain MAIL, and the message (its header) as written.
    for (const h of [mx.reports, mx.box]) {
      const mails = h.commands.filter((c) => c.line.startsWith('MAIL'));
      assert.ok(mails.length > 0 && mails.every((c) => c.tls && !/X-TLS-REQUIRED/i.test(c.line)), JSON.stringify(mails));
    }
    // The same mailboxes refuse ordinary mail: enforce meets an untrusted certificate, DANE a TLSA mismatch.
    const before = [mx.reports.stored.length, mx.box.stored.length];
    assert.equal(await send('tls-reports@reports.rpt.test', 'plain-to-reports'), 451);
    assert.equal(await send('tls-reports@box.dane-rpt.test', 'plain-to-box'), 451);
    assert.deepEqual([mx.reports.stored.length, mx.box.stored.length], before);
    // The header alone comes too late (the hop was chosen at RCPT): refused all the same; where the
    // policy holds, the message, header included, arrives byte for byte.
    const withHeader = `TLS-Required: No\r\n${message('header-only')}`;
    const d = await dial(sh.port);
    try {
      await d.cmd('EHLO client.test');
      assert.equal((await sendMessage(d, 'a@client.test', ['tls-reports@reports.rpt.test'], withHeader)).replies[1].code, 451);
      await d.cmd('RSET');
      assert.equal((await sendMessage(d, 'a@client.test', ['u@plain.rpt.test'], withHeader)).final.code, 250);
    } finally {
      d.close();
    }
    assert.equal(mx.plain.stored.at(-1)!.body.toString('latin1'), withHeader);
    assert.deepEqual([mx.reports.stored.length, mx.box.stored.length], before);
    // Each line is written when its client session ends.
    const lineTo = (domain: string) => sh.transactions().find((t) => !t.policyBypass && t.nextHop?.startsWith(`${domain}:`));
    await until(() => lineTo('reports.rpt.test') !== undefined && lineTo('box.dane-rpt.test') !== undefined, 10_000, 'both lines');
    assert.deepEqual(
      [lineTo('reports.rpt.test')!, lineTo('box.dane-rpt.test')!].map((t) => [t.sts?.mode, t.sts?.result, t.dane?.reason]),
      [
        ['enforce', 'certificate-not-trusted', undefined],
        [undefined, 'tlsa-invalid', 'tlsa-mismatch'], // no MTA-STS policy there: `sts` says how TLS went (TLS-RPT's no-policy-found)
      ],
    );
  });
});

async function startCollector(address: string, cert: { cert: string; key: string }): Promise<Collector> {
  const posts: Collector['posts'] = [];
  const server = createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST') posts.push({ path: req.url ?? '', type: req.headers['content-type'] ?? '', body: Buffer.concat(chunks) });
      res.writeHead(req.method === 'POST' ? 201 : 405).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, address, () => resolve()));
  return { server, address, port: (server.address() as AddressInfo).port, posts };
}
