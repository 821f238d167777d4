import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { keyOf } from '../../../src/upstream/tls-target.js';
import { MemoryTicketStore } from '../../../src/resumption/memory-store.js';
import { ResumptionCache } from '../../../src/resumption/policy.js';
import { parseSession, SessionParseError } from '../../../src/resumption/session-der.js';
import { unwrapSession } from '../../../src/resumption/session-envelope.js';
import type { UnreadableReason } from '../../../src/resumption/session-error.js';

/**
 * The session reader on buffers captured from each Node.js line (test/fixtures/sessions, made by
 * capture.mjs there: bare DER from Node 20, Node's envelope from 22, 24 and 26), checked against
 * what OpenSSL's own reader said at capture time; then truncated and foreign envelopes. No external
 * program: this runs on any machine.
 */

const dir = join(import.meta.dirname, '..', '..', 'fixtures', 'sessions');
const fixtures = readdirSync(dir)
  .filter((f) => /^node\d+-tls1[23]\.bin$/.test(f))
  .map((f) => ({
    name: f.slice(0, -4),
    buf: readFileSync(join(dir, f)),
    openssl: JSON.parse(readFileSync(join(dir, f.replace(/\.bin$/, '.json')), 'utf8')) as {
      envelope: boolean;
      protocol: string;
      startTime: number;
      lifetimeHint: number;
    },
  }));

function reasonOf(buf: Buffer): UnreadableReason | 'read' {
  try {
    parseSession(buf);
    return 'read';
  } catch (err) {
    assert.ok(err instanceof SessionParseError, String(err));
    return err.reason;
  }
}

const prefix = Buffer.from('\0nodejs:tls:session:1\0', 'latin1');
const enveloped = fixtures.find((f) => f.name === 'node24-tls13')!.buf;
const bare = fixtures.find((f) => f.name === 'node20-tls13')!.buf;

describe('session buffers from every Node.js line', () => {
  test('fixtures cover Node 20 (bare DER) and 22, 24, 26 (envelope), TLS 1.2 and 1.3', () => {
    for (const major of [20, 22, 24, 26]) {
      for (const kind of ['tls12', 'tls13'])
        assert.ok(
          fixtures.some((f) => f.name === `node${major}-${kind}`),
          `node${major}-${kind}`,
        );
    }
  });

  for (const f of fixtures) {
    test(`${f.name}: version, issue time, lifetime hint and binding as OpenSSL read them`, () => {
      const info = parseSession(f.buf);
      assert.equal(info.version, f.openssl.protocol);
      assert.equal(info.issuedAt, f.openssl.startTime);
      assert.equal(info.lifetimeHint, f.openssl.lifetimeHint);
      assert.ok(info.ticket && info.ticket.length > 0, 'the server issued a ticket');
      assert.equal(info.boundTo, f.openssl.envelope ? 'localhost' : undefined);
      assert.equal(unwrapSession(f.buf).format, f.openssl.envelope ? 'node-envelope-1' : 'bare-der');
    });
  }

  test("the envelope is read field by field: the DER inside is the bare reader's input", () => {
    const inner = unwrapSession(enveloped).der;
    assert.equal(inner[0], 0x30);
    assert.equal(enveloped.length, prefix.length + 2 + 'localhost'.length + inner.length);
    const { boundTo, ...rest } = parseSession(enveloped);
    assert.equal(boundTo, 'localhost');
    assert.deepEqual(parseSession(inner), rest);
  });

  test('a servername of any length and in UTF-8 is carried through', () => {
    const inner = unwrapSession(enveloped).der;
    for (const name of ['', 'a', 'mx1.例え.jp', 'x'.repeat(300)]) {
      const n = Buffer.from(name, 'utf8');
      const len = Buffer.alloc(2);
      len.writeUInt16BE(n.length);
      assert.equal(parseSession(Buffer.concat([prefix, len, n, inner])).boundTo, name);
    }
  });
});

describe('unreadable session buffers: refused with a reason, never guessed at', () => {
  test('every truncation of an envelope or of bare DER is refused', () => {
    const nameEnd = prefix.length + 2 + 'localhost'.length;
    for (let cut = 0; cut < enveloped.length; cut++) {
      const reason = reasonOf(enveloped.subarray(0, cut));
      const expected = cut < prefix.length ? 'unknown-envelope' : cut <= nameEnd ? 'truncated-envelope' : 'malformed-der';
      assert.equal(reason, expected, `envelope cut at ${cut}`);
    }
    for (let cut = 1; cut < bare.length; cut++) assert.equal(reasonOf(bare.subarray(0, cut)), 'malformed-der', `DER cut at ${cut}`);
  });

  test('foreign envelopes and bytes: another envelope version, no scanning for a SEQUENCE', () => {
    const inner = unwrapSession(enveloped).der;
    const v2 = Buffer.concat([Buffer.from('\0nodejs:tls:session:2\0', 'latin1'), enveloped.subarray(prefix.length)]);
    assert.equal(reasonOf(v2), 'unknown-envelope');
    assert.equal(reasonOf(Buffer.concat([Buffer.from([0, 0, 0]), inner])), 'unknown-envelope', 'a SEQUENCE after junk is not looked for');
    assert.equal(reasonOf(Buffer.from('GET / HTTP/1.0\r\n\r\n')), 'unknown-envelope');
    assert.equal(reasonOf(Buffer.alloc(0)), 'unknown-envelope');
    const overrun = Buffer.from(enveloped);
    overrun.writeUInt16BE(0xffff, prefix.length);
    assert.equal(reasonOf(overrun), 'truncated-envelope');
    const garbage = Buffer.concat([enveloped.subarray(0, prefix.length + 2 + 9), Buffer.from('not DER at all')]);
    assert.equal(reasonOf(garbage), 'malformed-der', 'an envelope around something that is not DER');
    assert.equal(reasonOf(Buffer.concat([bare, Buffer.from([0])])), 'malformed-der', 'bytes after the session');
  });

  test('the policy keeps nothing it cannot read, and says why', async () => {
    const cache = new ResumptionCache(new MemoryTicketStore(10), { ticketsPerDestination: 8, maxAgeSeconds: 3600, reuse: 'never' });
    const key = keyOf({ host: '127.0.0.1', port: 1, servername: 'localhost', verify: 'name' });
    const v2 = Buffer.concat([Buffer.from('\0nodejs:tls:session:2\0', 'latin1'), enveloped.subarray(prefix.length)]);
    assert.deepEqual(await cache.received(key, v2), { kind: 'unreadable', reason: 'unknown-envelope' });
    assert.equal((await cache.offer(key)).kind, 'none');
  });
});
