import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AuditLog } from '../../src/audit/audit-log.js';
import { causeOfCode, upstreamErrorCause } from '../../src/audit/error-cause.js';
import type { AuditEvent, HandshakeEvent, UpstreamErrorEvent } from '../../src/audit/events.js';
import { auditReport, formatReport } from '../../src/audit/report/run-report.js';
import { parseConfig } from '../../src/config/load.js';
import { UpstreamError } from '../../src/errors/index.js';
import { MemoryTicketStore } from '../../src/resumption/memory-store.js';
import { ResumptionCache } from '../../src/resumption/policy.js';
import { Service } from '../../src/service/service.js';
import { dialTls } from '../../src/upstream/tls-dialer.js';
import { handshakeLine } from '../support/audit-lines.js';
import { makeCert, type CertPair } from '../support/certs.js';
import { missing } from '../support/interop.js';
import { startNodeTlsServer, type NodeTlsServer } from '../support/node-tls-server.js';
import { freeTcpPort } from '../support/ports.js';
import { dial, message, sendMessage } from '../support/smtp-client.js';
import { startFaultServer, type FaultServer } from '../support/smtp-fault-server.js';
import { startSmtpServer, type SmtpTestServer } from '../support/smtp-server.js';
import { startSmarthost, type Smarthost } from '../support/smarthost.js';

/**
 * Upstream failures are observable: real servers that refuse, stall, offer no STARTTLS, inject
 * bytes after STARTTLS or show the wrong certificate; each failed attempt leaves exactly one audit
 * line (`upstream.error` before TLS, `tls.handshake` with `errorCode` in it) with the error's own
 * code, and /metrics and `ticketbooth audit` count it under the cause that code maps to.
 */

const isUpstreamError = (e: AuditEvent): e is UpstreamErrorEvent => e.event === 'upstream.error';
const isHandshake = (e: AuditEvent): e is HandshakeEvent => e.event === 'tls.handshake';

/** The value of one sample in Prometheus text format whose labels include `labels` (summed). */
function sample(text: string, name: string, labels: Record<string, string>): number {
  let total = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) total += Number(m[3]);
  }
  return total;
}

/** Connects, reads until the tunnel closes the connection; what the client got. */
function clientOf(port: number, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('the tunnel did not close the connection'));
    }, timeoutMs);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
}

describe('tunnel: every failed upstream attempt is one audit line with a code', { skip: missing('openssl') }, () => {
  let cert: CertPair;
  let otherCa: CertPair;
  let tls: NodeTlsServer;
  let noStarttls: SmtpTestServer;
  let injecting: SmtpTestServer;
  let service: Service;
  let auditFile: string;
  let closedPort: number;
  let metrics = '';
  const replies: Record<string, string> = {};
  let lines: AuditEvent[] = [];

  const one = <T extends AuditEvent>(listener: string, is: (e: AuditEvent) => e is T): T => {
    const hits = lines.filter((e): e is T => is(e) && (e as { listener?: string }).listener === listener);
    assert.equal(
      hits.length,
      1,
      `${listener}: one line of its kind, saw ${JSON.stringify(lines.filter((e) => (e as { listener?: string }).listener === listener))}`,
    );
    return hits[0];
  };
  const linesOf = (listener: string): AuditEvent[] => lines.filter((e) => (e as { listener?: string }).listener === listener);

  before(async () => {
    cert = makeCert(['localhost']);
    otherCa = makeCert(['localhost']);
    tls = await startNodeTlsServer({ cert });
    noStarttls = await startSmtpServer({ cert, starttls: false });
    injecting = await startSmtpServer({ cert, injectAfterStarttls: '250-mx.evil.test\r\n250 AUTH PLAIN\r\n' });
    closedPort = await freeTcpPort();
    auditFile = join(mkdtempSync(join(tmpdir(), 'tb-upstream-errors-')), 'audit.jsonl');
    const tunnel = (name: string, upstream: Record<string, unknown>) => ({
      name,
      type: 'tunnel',
      listen: '127.0.0.1:0',
      upstream: { host: '127.0.0.1', ...upstream },
    });
    const smtp = (port: number, ca = cert.certFile) => ({ port, starttls: 'smtp', servername: 'localhost', ca, heloName: 'tb.test' });
    service = await Service.start(
      parseConfig(
        JSON.stringify({
          listeners: [
            tunnel('refused', { port: closedPort, servername: 'localhost', ca: cert.certFile }),
            tunnel('smtp-refused', smtp(closedPort)),
            tunnel('no-starttls', smtp(noStarttls.port)),
            tunnel('injection', smtp(injecting.port)),
            tunnel('wrong-ca', { port: tls.port, servername: 'localhost', ca: otherCa.certFile }),
            tunnel('wrong-name', { port: tls.port, servername: 'other.test', ca: cert.certFile }),
          ],
          admin: { listen: '127.0.0.1:0' },
          audit: { file: auditFile },
          shutdownTimeoutSeconds: 2,
        }),
      ),
    );
    const names = ['refused', 'smtp-refused', 'no-starttls', 'injection', 'wrong-ca', 'wrong-name'];
    // The tunnel writes the audit line before it closes the client: every line exists once all closed.
    await Promise.all(names.map(async (n) => (replies[n] = await clientOf(service.addressOf(n).port))));
    metrics = await (await fetch(`http://127.0.0.1:${service.admin!.address().port}/metrics`)).text();
    await service.stop(2000);
    lines = readFileSync(auditFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditEvent);
  });

  after(async () => {
    await service?.stop(1000);
    await Promise.all([tls?.stop(), noStarttls?.stop(), injecting?.stop()]);
  });

  test('TLS tunnel, connection refused: upstream.error stage connect, ECONNREFUSED, and no handshake line', () => {
    const e = one('refused', isUpstreamError);
    assert.deepEqual([e.stage, e.errorCode, e.destination], ['connect', 'ECONNREFUSED', `127.0.0.1:${closedPort}`]);
    assert.match(e.error, /ECONNREFUSED/);
    assert.equal(typeof e.ms, 'number');
    assert.ok(e.ms >= 0 && typeof e.time === 'string');
    assert.equal(linesOf('refused').length, 1, 'one attempt, one line');
    assert.equal(replies.refused, '', 'a TLS tunnel client is just closed');
  });

  test('STARTTLS tunnel, connection refused: the same line, and the client got 421', () => {
    const e = one('smtp-refused', isUpstreamError);
    assert.deepEqual([e.stage, e.errorCode], ['connect', 'ECONNREFUSED']);
    assert.equal(linesOf('smtp-refused').length, 1);
    assert.match(replies['smtp-refused'], /^421 4\.7\.0 /);
  });

  test('no STARTTLS offered: stage starttls, ERR_NO_STARTTLS; the server saw only our EHLO', () => {
    const e = one('no-starttls', isUpstreamError);
    assert.deepEqual([e.stage, e.errorCode, e.destination], ['starttls', 'ERR_NO_STARTTLS', `127.0.0.1:${noStarttls.port}`]);
    assert.deepEqual(
      noStarttls.stats.commands.map((c) => c.line),
      ['EHLO tb.test'],
    );
    assert.equal(linesOf('no-starttls').length, 1);
  });

  test('bytes after the 220 to STARTTLS: stage injection, ERR_STARTTLS_INJECTION; no TLS session, nothing injected logged', () => {
    const e = one('injection', isUpstreamError);
    assert.deepEqual([e.stage, e.errorCode], ['injection', 'ERR_STARTTLS_INJECTION']);
    assert.equal(injecting.stats.tlsSessions, 0);
    assert.doesNotMatch(JSON.stringify(linesOf('injection')), /evil|AUTH PLAIN/, 'the injected bytes are not in the log');
    assert.equal(linesOf('injection').length, 1);
  });

  test("wrong certificate: tls.handshake with the error's own code, of the certificate kind", () => {
    const ca = one('wrong-ca', isHandshake);
    assert.equal(ca.errorCode, 'DEPTH_ZERO_SELF_SIGNED_CERT', 'a self-signed certificate the CA file does not hold');
    const name = one('wrong-name', isHandshake);
    assert.equal(name.errorCode, 'ERR_TLS_CERT_ALTNAME_INVALID');
    for (const e of [ca, name]) {
      assert.ok(e.error);
      assert.equal(causeOfCode(e.errorCode!), 'certificate');
      assert.equal(linesOf(e.listener).length, 1);
    }
  });

  test('metrics: ticketbooth_upstream_errors_total by cause and stage', () => {
    const m = (listener: string, cause: string, stage: string): number =>
      sample(metrics, 'ticketbooth_upstream_errors_total', { listener, cause, stage });
    assert.equal(m('refused', 'connect', 'connect'), 1);
    assert.equal(m('smtp-refused', 'connect', 'connect'), 1);
    assert.equal(m('no-starttls', 'protocol', 'starttls'), 1);
    assert.equal(m('injection', 'protocol', 'injection'), 1);
    assert.equal(m('wrong-ca', 'certificate', 'tls'), 1);
    assert.equal(m('wrong-name', 'certificate', 'tls'), 1);
    assert.equal(sample(metrics, 'ticketbooth_upstream_errors_total', {}), 6, 'nothing counted twice');
    assert.equal(sample(metrics, 'ticketbooth_tls_handshakes_total', {}), 0, 'no handshake succeeded');
  });

  test('the audit report: upstream errors per destination by cause (json, text, html)', async () => {
    const r = await auditReport({ files: [auditFile], format: 'json' });
    assert.equal(r.input.upstreamErrors, 4);
    assert.equal(r.input.handshakes, 2);
    assert.equal(r.input.otherEvents, 0);
    assert.equal(r.upstreamErrors.total, 6);
    assert.deepEqual(r.upstreamErrors.byCause, { connect: 2, protocol: 2, certificate: 2 });
    assert.deepEqual(r.upstreamErrors.byStage, { connect: 2, starttls: 1, injection: 1, tls: 2 });
    const of = (port: number) => r.upstreamErrors.destinations.find((d) => d.destination === `127.0.0.1:${port}`);
    assert.deepEqual(of(closedPort), {
      destination: `127.0.0.1:${closedPort}`,
      total: 2,
      byCause: { connect: 2 },
      byStage: { connect: 2 },
    });
    assert.deepEqual(of(tls.port)?.byCause, { certificate: 2 });
    assert.deepEqual(of(noStarttls.port)?.byStage, { starttls: 1 });
    assert.deepEqual(of(injecting.port)?.byStage, { injection: 1 });
    assert.deepEqual(r.overall.errors, { certificate: 2 }, 'failed handshakes by cause, as before');

    const text = formatReport(r, 'text');
    assert.match(
      text,
      /failed upstream attempts: 6 by cause \(connect 2, certificate 2, protocol 2\), by stage \(connect 2, starttls 1, injection 1, tls 2\)/,
    );
    const row = text.split('\n').find((l) => l.startsWith(`127.0.0.1:${closedPort} `));
    assert.deepEqual(row?.trim().split(/\s+/), [`127.0.0.1:${closedPort}`, '2', '2', '0', '0', '0', '0', '0', '0', 'connect', '2']);

    const html = formatReport(await auditReport({ files: [auditFile], format: 'html' }), 'html');
    assert.match(html, /<table id="upstream-errors">/);
    assert.match(html, new RegExp(`<tr><td>127\\.0\\.0\\.1:${tls.port}</td><td>2</td><td>0</td><td>0</td><td>0</td><td>2</td>`));
  });
});

describe('smarthost: failed attempts to the next hop', { skip: missing('openssl') }, () => {
  let cert: CertPair;
  before(() => {
    cert = makeCert(['127.0.0.1', 'localhost']);
  });

  // replySeconds: long enough that a next hop that answers is never timed out on a loaded machine.
  const timeouts = { idleSeconds: 5, dataSeconds: 5, connectSeconds: 2, replySeconds: 1.5, dataDoneSeconds: 2 };

  /** One message through a smarthost relaying to `port`; the client's replies and the audit events. */
  async function relay(port: number, tls: Record<string, unknown>): Promise<{ sh: Smarthost; replies: string[]; final: number }> {
    const sh = await startSmarthost(
      { route: { mode: 'relay', host: '127.0.0.1', port }, tls, timeouts },
      { admin: { listen: '127.0.0.1:0' } },
    );
    try {
      const d = await dial(sh.port);
      await d.cmd('EHLO client.test');
      const sent = await sendMessage(d, 'a@client.test', ['b@dest.test'], message('x'));
      d.close();
      await sh.waitForTransactions(1);
      return { sh, replies: sent.replies.map((r) => r.raw), final: sent.final.code };
    } catch (err) {
      await sh.stop();
      throw err;
    }
  }

  async function scrape(sh: Smarthost): Promise<string> {
    return (await fetch(`http://127.0.0.1:${sh.service.admin!.address().port}/metrics`)).text();
  }

  test('connection refused: upstream.error stage connect, ECONNREFUSED; metrics count it', async () => {
    const port = await freeTcpPort();
    const { sh, replies } = await relay(port, { level: 'none' });
    try {
      assert.match(replies[1], /^451 4\.4\.1/);
      const errors = sh.events.filter(isUpstreamError);
      assert.equal(errors.length, 1);
      assert.deepEqual(
        [errors[0].listener, errors[0].destination, errors[0].stage, errors[0].errorCode],
        ['sh', `127.0.0.1:${port}`, 'connect', 'ECONNREFUSED'],
      );
      assert.equal(errors[0].cleartextFallback, undefined);
      assert.equal(
        sample(await scrape(sh), 'ticketbooth_upstream_errors_total', { listener: 'sh', cause: 'connect', stage: 'connect' }),
        1,
      );
    } finally {
      await sh.stop();
    }
  });

  test('a greeting that never comes: stage greeting, ERR_SMTP_TIMEOUT, cause timeout', async () => {
    const hop = await startFaultServer({ fault: 'stall-greeting' });
    try {
      const { sh } = await relay(hop.port, { level: 'none' });
      try {
        const [e, more] = sh.events.filter(isUpstreamError);
        assert.equal(more, undefined);
        assert.deepEqual([e.stage, e.errorCode], ['greeting', 'ERR_SMTP_TIMEOUT']);
        assert.equal(
          sample(await scrape(sh), 'ticketbooth_upstream_errors_total', { listener: 'sh', cause: 'timeout', stage: 'greeting' }),
          1,
        );
      } finally {
        await sh.stop();
      }
    } finally {
      await hop.stop();
    }
  });

  test('TLS required, STARTTLS not offered: stage starttls, ERR_NO_STARTTLS; nothing sent in cleartext', async () => {
    const hop: FaultServer = await startFaultServer({});
    try {
      const { sh, final } = await relay(hop.port, { level: 'encrypt' });
      try {
        assert.notEqual(final, 250);
        const errors = sh.events.filter(isUpstreamError);
        assert.deepEqual(
          errors.map((e) => [e.stage, e.errorCode]),
          [['starttls', 'ERR_NO_STARTTLS']],
        );
        assert.deepEqual(
          hop.commands.map((c) => c.line.split(' ')[0]),
          ['EHLO'],
        );
        assert.equal(hop.stored.length, 0);
      } finally {
        await sh.stop();
      }
    } finally {
      await hop.stop();
    }
  });

  test('injection under encrypt: stage injection; under may: the same line, then the cleartext retry delivers', async () => {
    const server = await startSmtpServer({ cert, injectAfterStarttls: '250 AUTH PLAIN\r\n' });
    try {
      const encrypt = await relay(server.port, { level: 'encrypt' });
      try {
        assert.notEqual(encrypt.final, 250);
        assert.deepEqual(
          encrypt.sh.events.filter(isUpstreamError).map((e) => [e.stage, e.errorCode]),
          [['injection', 'ERR_STARTTLS_INJECTION']],
        );
      } finally {
        await encrypt.sh.stop();
      }
      assert.equal(server.stats.messages, 0);
      const may = await relay(server.port, { level: 'may' });
      try {
        assert.equal(may.final, 250);
        assert.equal(server.stats.messages, 1, 'delivered in cleartext on the retry');
        const errors = may.sh.events.filter(isUpstreamError);
        assert.deepEqual(
          errors.map((e) => [e.stage, e.errorCode, e.cleartextFallback]),
          [['injection', 'ERR_STARTTLS_INJECTION', undefined]],
          'the retry succeeded: no line of its own',
        );
      } finally {
        await may.sh.stop();
      }
    } finally {
      await server.stop();
    }
  });

  test('a certificate that does not verify: tls.handshake with a certificate code, no upstream.error', async () => {
    const other = makeCert(['127.0.0.1', 'localhost']);
    const hop = await startFaultServer({ cert, starttls: true });
    try {
      const { sh } = await relay(hop.port, { level: 'verify', ca: other.certFile });
      try {
        const failed = sh.events.filter(isHandshake).filter((e) => e.error !== undefined);
        assert.equal(failed.length, 1);
        assert.equal(causeOfCode(failed[0].errorCode!), 'certificate', failed[0].errorCode);
        assert.equal(sh.events.filter(isUpstreamError).length, 0, "the handshake line is the attempt's one line");
        assert.equal(
          sample(await scrape(sh), 'ticketbooth_upstream_errors_total', { listener: 'sh', cause: 'certificate', stage: 'tls' }),
          1,
        );
      } finally {
        await sh.stop();
      }
    } finally {
      await hop.stop();
    }
  });
});

describe('the dialer: a handshake that stalls or is cut carries its own code', () => {
  /** A TCP server that accepts and then stays silent, or resets on the first byte (the ClientHello). */
  async function rawServer(behaviour: 'silent' | 'reset'): Promise<{ port: number; stop(): Promise<void> }> {
    const sockets = new Set<Socket>();
    const server = createServer((s) => {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
      if (behaviour === 'reset') s.once('data', () => s.resetAndDestroy());
    });
    await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
    return {
      port: (server.address() as AddressInfo).port,
      stop: () =>
        new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy();
          server.close(() => resolve());
        }),
    };
  }

  async function failedDial(port: number, timeoutMs: number): Promise<{ err: unknown; events: AuditEvent[] }> {
    const audit = new AuditLog();
    const events: AuditEvent[] = [];
    audit.on('event', (e) => events.push(e));
    const cache = new ResumptionCache(new MemoryTicketStore(10), { ticketsPerDestination: 8, maxAgeSeconds: 3600, reuse: 'never' });
    const err = await dialTls(
      { host: '127.0.0.1', port, verify: 'none' },
      { listener: 'd', cache, audit, handshakeTimeoutMs: timeoutMs },
    ).then(
      () => assert.fail('the dial succeeded'),
      (e: unknown) => e,
    );
    return { err, events };
  }

  test('no answer to the ClientHello: tls.handshake with ERR_UPSTREAM_TIMEOUT, cause timeout', async () => {
    const server = await rawServer('silent');
    try {
      const { err, events } = await failedDial(server.port, 300);
      assert.ok(err instanceof UpstreamError);
      assert.deepEqual([err.stage, err.code], ['tls', 'ERR_UPSTREAM_TIMEOUT'], 'callers still match on the kind');
      assert.equal(events.length, 1);
      const e = events[0] as HandshakeEvent;
      assert.deepEqual([e.event, e.errorCode, upstreamErrorCause(e)], ['tls.handshake', 'ERR_UPSTREAM_TIMEOUT', 'timeout']);
    } finally {
      await server.stop();
    }
  });

  test('a reset in the handshake: tls.handshake with ECONNRESET, cause closed', async () => {
    const server = await rawServer('reset');
    try {
      const { events } = await failedDial(server.port, 5000);
      assert.equal(events.length, 1);
      const e = events[0] as HandshakeEvent;
      assert.deepEqual([e.event, e.errorCode, upstreamErrorCause(e)], ['tls.handshake', 'ECONNRESET', 'closed']);
    } finally {
      await server.stop();
    }
  });
});

describe('causes: by code, and by text only for lines written before errorCode existed', () => {
  test('codes from Node, OpenSSL and ticketbooth map to the fixed set', () => {
    const cases: Array<[string, string]> = [
      ['ECONNREFUSED', 'connect'],
      ['EHOSTUNREACH', 'connect'],
      ['ENOTFOUND', 'connect'],
      ['ERR_UPSTREAM_TIMEOUT', 'timeout'],
      ['ETIMEDOUT', 'timeout'],
      ['ERR_SMTP_TIMEOUT', 'timeout'],
      ['ECONNRESET', 'closed'],
      ['ERR_UPSTREAM_CLOSED', 'closed'],
      ['ERR_SMTP_CLOSED', 'closed'],
      ['ERR_TLS_CERT_ALTNAME_INVALID', 'certificate'],
      ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'certificate'],
      ['DEPTH_ZERO_SELF_SIGNED_CERT', 'certificate'],
      ['SELF_SIGNED_CERT_IN_CHAIN', 'certificate'],
      ['CERT_HAS_EXPIRED', 'certificate'],
      ['HOSTNAME_MISMATCH', 'certificate'],
      ['ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'certificate'],
      ['ERR_SSL_WRONG_VERSION_NUMBER', 'tls'],
      ['ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', 'tls'],
      ['EPROTO', 'tls'],
      ['ERR_NO_STARTTLS', 'protocol'],
      ['ERR_STARTTLS_INJECTION', 'protocol'],
      ['ERR_SMTP_GREETING', 'protocol'],
      ['ERR_TLSA_MISMATCH', 'certificate'],
      ['ERR_DANE_DEFERRED', 'certificate'],
      ['ERR_SOMETHING_NEW', 'other'],
    ];
    assert.deepEqual(
      cases.map(([code]) => [code, causeOfCode(code)]),
      cases,
    );
  });

  test('a log mixing old lines (text only) and new ones (errorCode) is counted by cause in the report', async () => {
    const time = '2026-11-01T10:00:00.000Z';
    const failed = (destination: string, error: string, errorCode?: string): string =>
      handshakeLine({ time, destination, error, ...(errorCode ? { errorCode } : {}) });
    const file = join(mkdtempSync(join(tmpdir(), 'tb-upstream-errors-')), 'mixed.jsonl');
    writeFileSync(
      file,
      [
        failed('old.test:443', 'old.test:443: connect ECONNREFUSED 127.0.0.1:443'),
        failed('old.test:443', 'old.test:443: self-signed certificate'),
        // The text says "certificate", the code says otherwise: the code wins.
        failed('new.test:443', 'certificate? no: reset', 'ECONNRESET'),
        JSON.stringify({
          time,
          event: 'upstream.error',
          listener: 'l',
          destination: 'new.test:443',
          stage: 'ehlo',
          errorCode: 'ERR_SMTP_PROTOCOL',
          error: 'EHLO refused',
          ms: 2,
        }),
        JSON.stringify({
          time,
          event: 'upstream.error',
          listener: 'l',
          destination: 'new.test:443',
          stage: 'made-up',
          error: 'connect ETIMEDOUT',
          ms: 2,
        }),
      ].join('\n') + '\n',
    );
    const r = await auditReport({ files: [file], format: 'json' });
    const of = (d: string) => r.upstreamErrors.destinations.find((x) => x.destination === d);
    assert.deepEqual(of('old.test:443'), {
      destination: 'old.test:443',
      total: 2,
      byCause: { connect: 1, certificate: 1 },
      byStage: { tls: 2 },
    });
    assert.deepEqual(of('new.test:443'), {
      destination: 'new.test:443',
      total: 3,
      byCause: { timeout: 1, closed: 1, protocol: 1 },
      byStage: { ehlo: 1, tls: 1, other: 1 },
    });
    assert.deepEqual(r.overall.errors, { connect: 1, certificate: 1, closed: 1 });
    assert.equal(r.input.upstreamErrors, 2);
  });
});
