import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DataScanner, type ScanResult } from '../../../src/smtp/data-stream.js';
import { parseEnvelopeArg } from '../../../src/smtp/envelope.js';

/** The smarthost's parsers without a socket: envelope syntax and the DATA scanner. */

describe('envelope arguments (RFC 5321 4.1.2, RFC 6531)', () => {
  test('addresses, the null path, postmaster, a source route, parameters', () => {
    const ok = (arg: string, kw: 'FROM' | 'TO') => {
      const p = parseEnvelopeArg(arg, kw);
      assert.ok(p.ok, arg);
      return p.arg;
    };
    assert.deepEqual(
      { ...ok('FROM:<a@Example.ORG> SIZE=10 BODY=8BITMIME', 'FROM'), params: undefined, words: undefined },
      { address: 'a@Example.ORG', domain: 'example.org', utf8: false, params: undefined, words: undefined },
    );
    // Each parameter word as received, for a next hop that gets it byte for byte (RFC 3461's xtext).
    assert.deepEqual(
      [...ok('TO:<a@b.example> notify=Success ORCPT=rfc822;a+2Bb@b.example', 'TO').words],
      [
        ['NOTIFY', 'notify=Success'],
        ['ORCPT', 'ORCPT=rfc822;a+2Bb@b.example'],
      ],
    );
    assert.deepEqual(
      [...ok('FROM:<a@b.example> SIZE=10 SMTPUTF8', 'FROM').params],
      [
        ['SIZE', '10'],
        ['SMTPUTF8', undefined],
      ],
    );
    assert.equal(ok('FROM:<>', 'FROM').address, '');
    assert.equal(ok('TO:<Postmaster>', 'TO').domain, '');
    assert.equal(ok('TO:<@relay.example,@r2.example:u@dest.example>', 'TO').address, 'u@dest.example');
    assert.equal(ok('TO:<"quoted local"@dest.example>', 'TO').address, '"quoted local"@dest.example');
    assert.equal(ok('TO:<ü@dest.example>', 'TO').utf8, true);
    assert.equal(ok('TO:<u@[IPv6:::1]>', 'TO').domain, '[ipv6:::1]');
  });

  test('syntax and address errors are told apart', () => {
    for (const bad of [
      'FROM:a@b.example',
      'FROM:<a@b.example',
      'FROM:<a@b.example>x',
      'FROM:<a@b.example> SIZE=1 SIZE=2',
      'TO:<a b@dest.example>',
    ]) {
      const p = parseEnvelopeArg(bad, bad.startsWith('TO') ? 'TO' : 'FROM');
      assert.equal(p.ok, false, bad);
    }
    assert.deepEqual(parseEnvelopeArg('FROM:<a@b.example', 'FROM'), { ok: false, reason: 'syntax' });
    assert.deepEqual(parseEnvelopeArg('TO:<>', 'TO'), { ok: false, reason: 'address' });
    assert.deepEqual(parseEnvelopeArg('TO:<a..b@-bad.example>', 'TO'), { ok: false, reason: 'address' });
  });
});

describe('DATA scanner', () => {
  const scan = (chunks: string[], maxLine = 998, maxSize = 1 << 20) => {
    const s = new DataScanner(maxLine, maxSize);
    const forwarded: Buffer[] = [];
    let last: ScanResult = { done: false };
    for (const c of chunks) {
      last = s.push(Buffer.from(c, 'latin1'));
      if (last.forward) forwarded.push(last.forward);
      if (last.done || last.fatal) break;
    }
    return { s, last, forwarded: Buffer.concat(forwarded).toString('latin1') };
  };

  test('lines go on unchanged (still dot-stuffed); the end-of-data line and what follows are split off', () => {
    const r = scan(['Subject: x\r\n\r\n..dot\r\nbo', 'dy\r\n.\r\nQUIT\r\n']);
    assert.equal(r.forwarded, 'Subject: x\r\n\r\n..dot\r\nbody\r\n');
    assert.equal(r.last.done, true);
    assert.equal(r.last.rest?.toString('latin1'), 'QUIT\r\n');
    assert.equal(r.s.size, 'Subject: x\r\n\r\n.dot\r\nbody\r\n'.length, 'size as stored: dot-stuffing removed');
  });

  test('8-bit and invalid UTF-8 bytes pass untouched', () => {
    const r = scan(['\xff\xfe\xc3\x28 ok\r\n.\r\n']);
    assert.equal(r.forwarded, '\xff\xfe\xc3\x28 ok\r\n');
  });

  test('a bare LF or CR is fatal (the smuggling shapes), wherever it falls', () => {
    for (const body of ['a\n.\nMAIL FROM:<x@y>\r\n', 'a\r\n.\nb\r\n', 'a\n.\r\n', 'a\rb\r\n', 'x\r\n.\r', 'ok\r\n\n.\r\n']) {
      assert.equal(scan([body, '\r\n.\r\n']).last.fatal, 'bare-lf', JSON.stringify(body));
    }
  });

  test('a NUL, an overlong line or an oversized message spoils it; the scan still reaches the end', () => {
    assert.equal(scan(['a\x00b\r\n.\r\n']).s.spoiled, 'nul');
    const long = scan(['x'.repeat(1000) + '\r\n.\r\n'], 998);
    assert.deepEqual([long.s.spoiled, long.last.done], ['line-too-long', true]);
    assert.equal(scan(['12345678901\r\n.\r\n'], 998, 10).s.spoiled, 'too-big');
  });
});
