import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { parseSession, SessionParseError } from '../../src/resumption/session-der.js';
import { unwrapSession } from '../../src/resumption/session-envelope.js';
import { makeCert, type CertPair } from '../support/certs.js';
import { missing } from '../support/interop.js';
import { getTls, startNodeTlsServer, startSServer, type SServerMode } from '../support/servers.js';

/**
 * The DER reader on session buffers real servers made, checked against OpenSSL's own reader
 * (`openssl sess_id -text`): what we read must be what OpenSSL says is in there.
 */

const dir = mkdtempSync(join(tmpdir(), 'tb-der-'));

interface OpenSslView {
  protocol: string;
  startTime: number;
  lifetimeHint?: number;
  ticket?: Buffer;
  sessionId: Buffer;
}

function openSslView(session: Buffer): OpenSslView {
  const file = join(dir, `s-${Math.random().toString(36).slice(2)}.der`);
  writeFileSync(file, unwrapSession(session).der); // OpenSSL reads the DER, not Node's envelope
  const text = execFileSync('openssl', ['sess_id', '-inform', 'DER', '-in', file, '-noout', '-text'], { encoding: 'utf8' });
  const field = (re: RegExp): string | undefined => re.exec(text)?.[1];
  const ticketHex = /TLS session ticket:\n((?:\s+[0-9a-f]{4} - .*\n)+)/.exec(text)?.[1];
  const ticket = ticketHex
    ? Buffer.from(
        ticketHex
          .split('\n')
          .map((l) => /^\s+[0-9a-f]{4} - ((?:[0-9a-f]{2}[ -]){1,16})/.exec(l)?.[1] ?? '')
          .join('')
          .replace(/[ -]/g, ''),
        'hex',
      )
    : undefined;
  const hint = field(/TLS session ticket lifetime hint: (\d+)/);
  return {
    protocol: field(/Protocol\s+: (\S+)/) ?? '',
    startTime: Number(field(/Start Time: (\d+)/)),
    lifetimeHint: hint === undefined ? undefined : Number(hint),
    ticket,
    sessionId: Buffer.from(field(/Session-ID: ([0-9A-F]*)/) ?? '', 'hex'),
  };
}

describe('session DER reader on buffers from real servers', { skip: missing('openssl') }, () => {
  let cert: CertPair;
  before(() => {
    cert = makeCert(['localhost']);
  });

  const cases: Array<{ mode: SServerMode; version: string; sessions: number; ticket: boolean }> = [
    { mode: 'tls13', version: 'TLSv1.3', sessions: 2, ticket: true },
    { mode: 'tls13-stateful', version: 'TLSv1.3', sessions: 2, ticket: true },
    { mode: 'tls12-tickets', version: 'TLSv1.2', sessions: 1, ticket: true },
    { mode: 'tls12-session-ids', version: 'TLSv1.2', sessions: 1, ticket: false },
  ];

  for (const c of cases) {
    test(`openssl s_server ${c.mode}: version, issue time, lifetime hint, ticket as OpenSSL reads them`, async () => {
      const server = await startSServer(c.mode, cert);
      try {
        const got = await getTls({ host: server.host, port: server.port, servername: 'localhost', ca: cert.cert });
        assert.equal(got.sessions.length, c.sessions, 'sessions handed out on a full handshake');
        for (const der of got.sessions) {
          const ours = parseSession(der);
          const theirs = openSslView(der);
          assert.equal(ours.version, c.version);
          assert.equal(theirs.protocol, c.version);
          assert.equal(ours.issuedAt, theirs.startTime);
          assert.ok(Math.abs(ours.issuedAt - Date.now() / 1000) < 120, 'issued just now');
          assert.equal(ours.lifetimeHint, theirs.lifetimeHint);
          if (c.ticket) {
            assert.ok(ours.ticket && ours.ticket.length > 0, 'a ticket');
            assert.deepEqual(ours.ticket, theirs.ticket);
          } else {
            assert.equal(ours.ticket, undefined);
            assert.equal(ours.sessionId.length, 32);
            assert.deepEqual(ours.sessionId, theirs.sessionId);
          }
        }
        if (got.sessions.length === 2) {
          assert.notDeepEqual(parseSession(got.sessions[0]).ticket, parseSession(got.sessions[1]).ticket, 'two distinct tickets');
        }
      } finally {
        await server.stop();
      }
    });
  }

  test('Node.js TLS 1.3 server: two tickets, the lifetime hint it was configured with', async () => {
    const server = await startNodeTlsServer({ cert, sessionTimeout: 123 });
    try {
      const got = await getTls({ host: server.host, port: server.port, servername: 'localhost', ca: cert.cert });
      assert.equal(got.sessions.length, 2);
      for (const der of got.sessions) {
        const ours = parseSession(der);
        assert.equal(ours.version, 'TLSv1.3');
        assert.equal(ours.lifetimeHint, openSslView(der).lifetimeHint);
        assert.equal(ours.lifetimeHint, 123);
      }
    } finally {
      await server.stop();
    }
  });

  test('unknown context tags are skipped; truncated or foreign input gives SessionParseError', async () => {
    const server = await startSServer('tls13', cert);
    let der: Buffer;
    try {
      der = unwrapSession((await getTls({ host: server.host, port: server.port, servername: 'localhost', ca: cert.cert })).sessions[0]).der;
    } finally {
      await server.stop();
    }
    const plain = parseSession(der);

    // Append a context tag OpenSSL does not write today ([30], holding an INTEGER) and one
    // primitive universal field; rebuild the outer SEQUENCE length.
    const outer = readOuter(der);
    const extra = Buffer.from([0xbe, 0x03, 0x02, 0x01, 0x2a, 0x05, 0x00]);
    const body = Buffer.concat([outer.body, extra]);
    const widened = Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
    const read = parseSession(widened);
    assert.deepEqual(read, plain);

    for (const cut of [0, 1, 2, 5, 40, Math.floor(der.length / 2), der.length - 1]) {
      assert.throws(() => parseSession(der.subarray(0, cut)), SessionParseError, `cut at ${cut}`);
    }
    assert.throws(() => parseSession(Buffer.from('GET / HTTP/1.0\r\n\r\n')), SessionParseError);
  });
});

function readOuter(der: Buffer): { body: Buffer } {
  assert.equal(der[0], 0x30);
  let len = der[1];
  let pos = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[2 + i];
    pos += n;
  }
  return { body: der.subarray(pos, pos + len) };
}

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  if (n < 0x100) return Buffer.from([0x81, n]);
  return Buffer.from([0x82, n >> 8, n & 0xff]);
}
